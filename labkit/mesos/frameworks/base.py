"""What every example framework does: subscribe, read events, acknowledge updates, report.

Each line a framework prints is one JSON object (``{"event": "launch", ...}``), so a lab or a
test can follow what the scheduler decided without reading its code.
"""

from __future__ import annotations

import argparse
import json
import queue
import signal
import sys
import time
from typing import Any

from labkit.mesos.client import SchedulerClient


def say(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": round(time.time(), 3), **fields}), flush=True)


class Framework:
    """Subclasses decide on offers and updates; ``done`` ends the loop."""

    name = "framework"

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.client = SchedulerClient(args.master)
        self.done = False
        self.exit_code = 0

    def info(self) -> dict[str, Any]:
        return {"user": "root", "name": self.args.name or self.name, "failover_timeout": 0,
                "capabilities": []}

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        sub = self.client.subscribe(self.info())
        say("subscribed", framework_id=self.client.framework_id,
            heartbeat_interval_seconds=sub["subscribed"]["heartbeat_interval_seconds"])
        try:
            while not self.done:
                try:
                    event = self.client.events.get(timeout=0.2)
                except queue.Empty:
                    self.tick()
                    continue
                if event is None:
                    say("disconnected")
                    return 1
                kind = event["type"]
                if kind == "OFFERS":
                    self.offers(event["offers"]["offers"])
                elif kind == "UPDATE":
                    status = event["update"]["status"]
                    self.update(status)
                    if not self.done:  # after TEARDOWN the master no longer knows the framework
                        self.client.acknowledge(status)
                elif kind == "RESCIND":
                    say("rescind", offer_id=event["rescind"]["offer_id"]["value"])
                elif kind == "ERROR":
                    say("error", message=event["error"]["message"])
                    return 1
            return self.exit_code
        finally:
            self.client.close()

    def tick(self) -> None:
        """Called when no event came for a moment (a framework may look at signals it was sent)."""

    def offers(self, offers: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def update(self, status: dict[str, Any]) -> None:
        raise NotImplementedError


def common_args(prog: str, description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description=description)
    ap.add_argument("--master", required=True, help="the master's URL, e.g. http://127.0.0.1:5050")
    ap.add_argument("--name", default="", help="framework_info.name")
    ap.add_argument("--cmd", default="", help="the shell command each task runs")
    ap.add_argument("--cpus", type=float, default=0.1)
    ap.add_argument("--mem", type=float, default=32.0, help="MB")
    ap.add_argument("--image", default="busybox")
    ap.add_argument("--refuse-seconds", type=float, default=5.0,
                    help="filters.refuse_seconds sent with each DECLINE and ACCEPT (for an offer's leftover)")
    return ap
