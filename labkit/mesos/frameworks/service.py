"""A Marathon-like service framework: keep ``--instances`` copies of a task running.

Like Marathon's app definition: ``instances``, a COMMAND health check, and constraints in
Marathon's ``field:OPERATOR`` form (``hostname:UNIQUE``: at most one instance per agent host).
A task that ends or fails its health check is replaced from a later offer. Once all instances
run it SUPPRESSes offers, and REVIVEs when one is lost.

    python -m labkit.mesos.frameworks.service --master URL --instances 3 --cmd 'httpd -f' \\
        --constraint hostname:UNIQUE --health-cmd 'true'
"""

from __future__ import annotations

import sys
import uuid
from typing import Any

from labkit.mesos.client import offered, task_info
from labkit.mesos.frameworks.base import Framework, common_args, say
from labkit.mesos.protocol import TERMINAL, TaskState

OPERATORS = ("UNIQUE",)


def parse_constraint(text: str) -> tuple[str, str]:
    field, _, op = text.partition(":")
    if field != "hostname" or op not in OPERATORS:
        raise SystemExit(f"constraint {text!r} is not supported: write hostname:UNIQUE")
    return field, op


class Service(Framework):
    name = "marathon-like"

    def __init__(self, args: Any) -> None:
        super().__init__(args)
        self.constraints = [parse_constraint(c) for c in args.constraint]
        self.active: dict[str, dict[str, Any]] = {}  # task id -> hostname, state, healthy
        self.suppressed = False

    def _unique_ok(self, hostname: str) -> bool:
        if ("hostname", "UNIQUE") not in self.constraints:
            return True
        return all(t["hostname"] != hostname for t in self.active.values())

    def offers(self, offers: list[dict[str, Any]]) -> None:
        for offer in offers:
            oid, host = offer["id"]["value"], offer["hostname"]
            have = offered(offer)
            why = ""
            if len(self.active) >= self.args.instances:
                why = "all instances running"
            elif not self._unique_ok(host):
                why = "constraint hostname:UNIQUE"
            elif have.get("cpus", 0) < self.args.cpus or have.get("mem", 0) < self.args.mem:
                why = "too small"
            if why:
                self.client.decline([oid], self.args.refuse_seconds)
                say("decline", offer=oid, hostname=host, why=why)
                continue
            tid = f"{self.args.id}.{uuid.uuid4().hex[:8]}"
            health = {"delay_seconds": 0.0, "interval_seconds": self.args.health_interval,
                      "grace_period_seconds": self.args.health_interval * 3, "consecutive_failures": 3,
                      "timeout_seconds": 5.0}
            ti = task_info(tid, offer["agent_id"]["value"], self.args.cmd, self.args.cpus, self.args.mem,
                           name=self.args.id, image=self.args.image, health_command=self.args.health_cmd or None,
                           health=health)
            self.active[tid] = {"hostname": host, "state": "TASK_STAGING", "healthy": None}
            self.client.accept([oid], [ti], self.args.refuse_seconds)  # the leftover is filtered as long
            say("launch", task=tid, hostname=host, offer=oid)
        if len(self.active) >= self.args.instances and not self.suppressed:
            self.client.call("SUPPRESS", {})
            self.suppressed = True
            say("suppress")

    def update(self, status: dict[str, Any]) -> None:
        tid, state = status["task_id"]["value"], status["state"]
        say("update", task=tid, state=state, healthy=status.get("healthy"), message=status.get("message", ""))
        task = self.active.get(tid)
        if task is None:
            return
        task["state"], task["healthy"] = state, status.get("healthy", task["healthy"])
        if TaskState[state] in TERMINAL:
            del self.active[tid]
            if self.suppressed:
                self.client.call("REVIVE", {})
                self.suppressed = False
                say("revive", replacing=tid)


def main(argv: list[str] | None = None) -> int:
    ap = common_args("labkit.mesos.frameworks.service", __doc__.splitlines()[0])
    ap.add_argument("--id", default="web", help="the app id; task ids are ID.<random>")
    ap.add_argument("--instances", type=int, default=1)
    ap.add_argument("--constraint", action="append", default=[], help="e.g. hostname:UNIQUE")
    ap.add_argument("--health-cmd", default="", help="a COMMAND health check run in the task's container")
    ap.add_argument("--health-interval", type=float, default=1.0)
    return Service(ap.parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
