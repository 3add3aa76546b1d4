"""A Marathon-like service framework: keep ``instances`` copies of an app running, and upgrade it.

From Marathon's app definition it takes ``instances``, a COMMAND health check, constraints in
Marathon's form (``hostname:UNIQUE``: at most one instance per agent host) and ``upgradeStrategy``.
A task that ends or fails its health check is replaced from a later offer. Once all instances
run it SUPPRESSes offers, and REVIVEs when it needs more.

The app comes from flags or from a Marathon-style JSON file (``--app app.json``); on SIGHUP the
file is read again, and a changed ``cmd``/``cpus``/``mem``/``image`` is a new version, rolled out
as Marathon does: new tasks are started while the app has at most
``instances * (1 + maximumOverCapacity)`` tasks, and old ones are killed while at least
``instances * minimumHealthCapacity`` healthy tasks remain.

    python -m labkit.mesos.frameworks.service --master URL --instances 3 --cmd 'httpd -f' \\
        --constraint hostname:UNIQUE --health-cmd 'true'
"""

from __future__ import annotations

import json
import math
import signal
import sys
import uuid
from dataclasses import dataclass
from typing import Any

from labkit.mesos.client import offered, task_info
from labkit.mesos.frameworks.base import Framework, common_args, say
from labkit.mesos.protocol import TERMINAL, TaskState

OPERATORS = ("UNIQUE",)


@dataclass
class App:
    id: str
    cmd: str
    instances: int
    cpus: float
    mem: float
    image: str
    constraints: list[tuple[str, str]]
    health_cmd: str
    health_interval: float
    min_health: float = 1.0  # upgradeStrategy.minimumHealthCapacity, Marathon's defaults
    max_over: float = 1.0  # upgradeStrategy.maximumOverCapacity

    def version_key(self) -> tuple[str, float, float, str, str]:
        return self.cmd, self.cpus, self.mem, self.image, self.health_cmd


def parse_constraint(field: str, op: str) -> tuple[str, str]:
    if field != "hostname" or op not in OPERATORS:
        raise SystemExit(f"constraint {field}:{op} is not supported: write hostname:UNIQUE")
    return field, op


def app_from(args: Any) -> App:
    """The app from the flags, overlaid by ``--app FILE`` (Marathon's JSON field names)."""
    app = App(id=args.id, cmd=args.cmd, instances=args.instances, cpus=args.cpus, mem=args.mem, image=args.image,
              constraints=[parse_constraint(*c.split(":", 1)) for c in args.constraint if ":" in c]
              + [parse_constraint(c, "") for c in args.constraint if ":" not in c],
              health_cmd=args.health_cmd, health_interval=args.health_interval)
    if args.app:
        with open(args.app) as f:
            spec = json.load(f)
        app.id = spec.get("id", app.id).strip("/")
        for key in ("cmd", "instances", "cpus", "mem"):
            if key in spec:
                setattr(app, key, type(getattr(app, key))(spec[key]))
        app.image = ((spec.get("container") or {}).get("docker") or {}).get("image", app.image)
        if "constraints" in spec:
            app.constraints = [parse_constraint(c[0], c[1]) for c in spec["constraints"]]
        for hc in spec.get("healthChecks", [])[:1]:
            if hc.get("protocol", "COMMAND") != "COMMAND":
                raise SystemExit("only COMMAND health checks are supported (the task has no port here)")
            app.health_cmd = hc["command"]["value"]
            app.health_interval = float(hc.get("intervalSeconds", app.health_interval))
        us = spec.get("upgradeStrategy") or {}
        app.min_health = float(us.get("minimumHealthCapacity", app.min_health))
        app.max_over = float(us.get("maximumOverCapacity", app.max_over))
    if not app.cmd:
        raise SystemExit("the app needs a cmd (--cmd, or \"cmd\" in --app)")
    if not (0 <= app.min_health <= 1 and 0 <= app.max_over <= 1):
        raise SystemExit("upgradeStrategy: minimumHealthCapacity and maximumOverCapacity must be within 0..1")
    return app


class Service(Framework):
    name = "marathon-like"

    def __init__(self, args: Any) -> None:
        super().__init__(args)
        self.app = app_from(args)
        self.version = 1
        self.active: dict[str, dict[str, Any]] = {}  # task id -> hostname, state, healthy, version, killing
        self.suppressed = False
        self.reload = False
        self.deploying = False
        signal.signal(signal.SIGHUP, lambda *_: setattr(self, "reload", True))

    # what the app needs now
    def _current(self) -> list[dict[str, Any]]:
        return [t for t in self.active.values() if t["version"] == self.version]

    def _old(self) -> list[dict[str, Any]]:
        return [t for t in self.active.values() if t["version"] != self.version]

    def _healthy(self, t: dict[str, Any]) -> bool:
        if t["killing"] or t["state"] != "TASK_RUNNING":
            return False
        return bool(t["healthy"]) if self.app.health_cmd else True

    def _wants_offers(self) -> bool:
        return len(self._current()) < self.app.instances

    def _room(self) -> bool:
        """Marathon's maximumOverCapacity: how many tasks (old and new) may run during a deployment."""
        limit = self.app.instances + (math.floor(self.app.instances * self.app.max_over) if self._old() else 0)
        return len([t for t in self.active.values() if not t["killing"]]) < limit

    def _unique_ok(self, hostname: str) -> bool:
        if ("hostname", "UNIQUE") not in self.app.constraints:
            return True
        return all(t["hostname"] != hostname for t in self.active.values())

    def tick(self) -> None:
        if not self.reload:
            return
        self.reload = False
        old_key = self.app.version_key()
        self.app = app_from(self.args)
        if self.app.version_key() != old_key:
            self.version += 1
            self.deploying = True
            say("deployment", version=self.version, instances=self.app.instances,
                minimumHealthCapacity=self.app.min_health, maximumOverCapacity=self.app.max_over)
        self._retire()
        self._offers_wanted()

    def _offers_wanted(self) -> None:
        if self._wants_offers() and self._room() and self.suppressed:
            self.client.call("REVIVE", {})
            self.suppressed = False
            say("revive")
        elif not self._wants_offers() and not self.suppressed:
            self.client.call("SUPPRESS", {})
            self.suppressed = True
            say("suppress")

    def _retire(self) -> None:
        """Kill old-version (and surplus) tasks while enough healthy ones remain."""
        floor = math.ceil(self.app.instances * self.app.min_health)
        surplus = sorted(self._old(), key=lambda t: self._healthy(t))  # unhealthy old ones go first
        extra = len(self._current()) - self.app.instances
        if extra > 0:
            surplus += sorted(self._current(), key=lambda t: self._healthy(t))[:extra]
        for t in surplus:
            if t["killing"]:
                continue
            healthy = sum(self._healthy(x) for x in self.active.values())
            if self._healthy(t) and healthy - 1 < floor:
                break
            t["killing"] = True
            self.client.call("KILL", {"task_id": {"value": t["id"]}, "agent_id": {"value": t["agent_id"]}})
            say("kill", task=t["id"], version=t["version"], healthy_left=healthy - self._healthy(t))
        current = self._current()
        if (self.deploying and not self._old() and len(current) == self.app.instances
                and all(self._healthy(t) for t in current)):
            self.deploying = False
            say("deployment-finished", version=self.version)

    def offers(self, offers: list[dict[str, Any]]) -> None:
        app = self.app
        for offer in offers:
            oid, host = offer["id"]["value"], offer["hostname"]
            have = offered(offer)
            why = ""
            if not self._wants_offers():
                why = "all instances running"
            elif not self._room():
                why = "upgradeStrategy.maximumOverCapacity"
            elif not self._unique_ok(host):
                why = "constraint hostname:UNIQUE"
            elif have.get("cpus", 0) < app.cpus or have.get("mem", 0) < app.mem:
                why = "too small"
            if why:
                self.client.decline([oid], self.args.refuse_seconds)
                say("decline", offer=oid, hostname=host, why=why)
                continue
            tid = f"{app.id}.{uuid.uuid4().hex[:8]}"
            health = {"delay_seconds": 0.0, "interval_seconds": app.health_interval,
                      "grace_period_seconds": app.health_interval * 3, "consecutive_failures": 3,
                      "timeout_seconds": 5.0}
            ti = task_info(tid, offer["agent_id"]["value"], app.cmd, app.cpus, app.mem, name=app.id,
                           image=app.image, health_command=app.health_cmd or None, health=health)
            self.active[tid] = {"id": tid, "agent_id": offer["agent_id"]["value"], "hostname": host,
                                "state": "TASK_STAGING", "healthy": None, "version": self.version, "killing": False}
            self.client.accept([oid], [ti], self.args.refuse_seconds)  # the leftover is filtered as long
            say("launch", task=tid, hostname=host, offer=oid, version=self.version,
                tasks=len([t for t in self.active.values() if not t["killing"]]))
        self._offers_wanted()

    def update(self, status: dict[str, Any]) -> None:
        tid, state = status["task_id"]["value"], status["state"]
        say("update", task=tid, state=state, healthy=status.get("healthy"), message=status.get("message", ""))
        task = self.active.get(tid)
        if task is None:
            return
        task["state"], task["healthy"] = state, status.get("healthy", task["healthy"])
        if TaskState[state] in TERMINAL:
            del self.active[tid]
        self._retire()
        self._offers_wanted()


def main(argv: list[str] | None = None) -> int:
    ap = common_args("labkit.mesos.frameworks.service", __doc__.splitlines()[0])
    ap.add_argument("--app", default="", help="a Marathon-style app JSON file; SIGHUP reads it again")
    ap.add_argument("--id", default="web", help="the app id; task ids are ID.<random>")
    ap.add_argument("--instances", type=int, default=1)
    ap.add_argument("--constraint", action="append", default=[], help="e.g. hostname:UNIQUE")
    ap.add_argument("--health-cmd", default="", help="a COMMAND health check run in the task's container")
    ap.add_argument("--health-interval", type=float, default=1.0)
    return Service(ap.parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
