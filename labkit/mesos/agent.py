"""A Mesos agent inside the master: it runs each launched task as a container through
:mod:`labkit.runtime` and reports what happens as TaskStates, as Mesos' command executor does
(STARTING, RUNNING, then FINISHED/FAILED/KILLED; ``healthy`` when a COMMAND health check is given).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from labkit.errors import LabkitError
from labkit.mesos.protocol import TaskState
from labkit.runtime.base import ContainerState, Runtime
from labkit.runtime.oneshot import configs, limits, remove, start

log = logging.getLogger(__name__)
DEFAULT_IMAGE = "busybox"
# the callback the master gives: ("framework id/task id", state, message, healthy or None, reason or None)
StatusSink = Callable[[str, TaskState, str, "bool | None", "str | None"], None]


@dataclass
class HealthCheck:
    """mesos.v1.HealthCheck of type COMMAND, with its defaults from mesos.proto."""

    command: str
    delay_seconds: float = 15.0
    interval_seconds: float = 10.0
    timeout_seconds: float = 20.0
    consecutive_failures: int = 3
    grace_period_seconds: float = 10.0

    @classmethod
    def from_json(cls, hc: dict[str, Any] | None) -> HealthCheck | None:
        if not hc:
            return None
        if hc.get("type", "COMMAND") != "COMMAND":
            raise ValueError(f"health_check type {hc.get('type')} is not supported here; use COMMAND")
        cmd = (hc.get("command") or {}).get("value")
        if not cmd:
            raise ValueError("a COMMAND health_check needs command.value")
        kw = {k: float(hc[k]) for k in ("delay_seconds", "interval_seconds", "timeout_seconds",
                                         "grace_period_seconds") if k in hc}
        if "consecutive_failures" in hc:
            kw["consecutive_failures"] = int(hc["consecutive_failures"])
        return cls(command=cmd, **kw)  # type: ignore[arg-type]


@dataclass
class TaskRun:
    task_id: str
    framework_id: str
    image: str
    command: list[str]
    env: dict[str, str]
    cpus: float
    mem: float
    health: HealthCheck | None = None
    kill: threading.Event = field(default_factory=threading.Event)
    container_id: str | None = None
    thread: threading.Thread | None = None

    @property
    def key(self) -> str:
        return f"{self.framework_id}/{self.task_id}"


def task_run(info: dict[str, Any], framework_id: str) -> TaskRun:
    """A TaskInfo's CommandInfo, container image and health check (ValueError says what is wrong)."""
    from labkit.mesos.protocol import from_resources, value_of

    task_id = value_of(info.get("task_id"))
    if not task_id:
        raise ValueError("TaskInfo needs task_id.value")
    cmd = info.get("command") or {}
    if "executor" in info:
        raise ValueError("custom executors are not supported: give the task a CommandInfo")
    if cmd.get("shell", True):
        if not cmd.get("value"):
            raise ValueError("TaskInfo.command.value is required when command.shell is true")
        argv = ["sh", "-c", cmd["value"]]
    else:
        argv = ([cmd["value"]] if cmd.get("value") else []) + [str(a) for a in cmd.get("arguments", [])]
    env = {v["name"]: str(v.get("value", "")) for v in (cmd.get("environment") or {}).get("variables", [])}
    container = info.get("container") or {}
    image = ((container.get("docker") or {}).get("image")
             or (((container.get("mesos") or {}).get("image") or {}).get("docker") or {}).get("name")
             or DEFAULT_IMAGE)
    res = from_resources(info.get("resources", []))
    return TaskRun(task_id=task_id, framework_id=framework_id, image=image, command=argv, env=env,
                   cpus=res.get("cpus", 0.0), mem=res.get("mem", 0.0),
                   health=HealthCheck.from_json(info.get("health_check")))


class Agent:
    """One agent: its resources, attributes and running tasks (the master does the accounting)."""

    def __init__(self, agent_id: str, hostname: str, resources: dict[str, float], runtime: Runtime,
                 sink: StatusSink, attributes: dict[str, str] | None = None, kill_grace_seconds: float = 3.0) -> None:
        self.id = agent_id
        self.hostname = hostname
        self.resources = dict(resources)
        self.attributes = dict(attributes or {})
        self.runtime = runtime
        self.sink = sink
        self.tasks: dict[str, TaskRun] = {}
        self.outputs: dict[str, str] = {}  # the end of each finished task's log (Mesos keeps it in the sandbox)
        self._threads: set[threading.Thread] = set()  # until each has removed its container
        self.kill_grace_seconds = kill_grace_seconds

    def launch(self, run: TaskRun) -> None:
        self.tasks[run.key] = run
        run.thread = threading.Thread(target=self._run, args=(run,), name=f"mesos-task-{run.task_id}", daemon=True)
        self._threads.add(run.thread)
        run.thread.start()

    def kill(self, key: str) -> None:
        """Kill the task ``framework id/task id`` (task ids are unique only within a framework)."""
        run = self.tasks.get(key)
        if run is not None:
            run.kill.set()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Kill every task and wait until its container is gone."""
        for run in list(self.tasks.values()):
            run.kill.set()
        for thread in list(self._threads):
            thread.join(timeout)

    def _run(self, run: TaskRun) -> None:
        rt = self.runtime
        name = "mesos-" + re.sub(r"[^a-zA-Z0-9_.-]", "-", run.task_id)[:40] + "-" + uuid.uuid4().hex[:4]
        sconf, cconf = configs(run.image, run.command, name, self.hostname, run.env,
                               limits(memory=int(run.mem * 1024 * 1024) if run.mem >= 4 else None,
                                      cpus=run.cpus if run.cpus > 0 else None),
                               {"labkit.io/mesos-task": run.task_id, "labkit.io/mesos-agent": self.id})
        self.sink(run.key, TaskState.TASK_STARTING, "", None, None)
        sid = cid = None
        try:
            try:
                sid, cid = start(rt, sconf, cconf)
            except (LabkitError, OSError) as exc:
                self.sink(run.key, TaskState.TASK_FAILED, f"Failed to launch container: {exc}", None,
                          "REASON_CONTAINER_LAUNCH_FAILED")
                return
            run.container_id = cid
            self.sink(run.key, TaskState.TASK_RUNNING, "", None, None)
            self._watch(run, cid)
        finally:
            if sid is not None:
                try:
                    remove(rt, sid, cid)
                except LabkitError as exc:  # `labkit gc` finds what is left; the task's state is already reported
                    log.warning("could not remove the container of task %s: %s", run.task_id, exc)
            self.tasks.pop(run.key, None)
            self._threads.discard(threading.current_thread())

    def _watch(self, run: TaskRun, cid: str) -> None:
        rt = self.runtime
        hc = run.health
        started = time.monotonic()
        next_check = started + (hc.delay_seconds if hc else 0.0)
        healthy: bool | None = None
        failures = 0
        while True:
            st = rt.container_status(cid)
            if st.state == ContainerState.EXITED:
                self._keep_log(run.key, cid)
                code = st.exit_code
                if code == 0:
                    self.sink(run.key, TaskState.TASK_FINISHED, "Command exited with status 0", healthy, None)
                else:
                    self.sink(run.key, TaskState.TASK_FAILED, f"Command exited with status {code}", healthy,
                              "REASON_COMMAND_EXECUTOR_FAILED")
                return
            if run.kill.is_set():
                self._stop(cid)
                self._keep_log(run.key, cid)
                self.sink(run.key, TaskState.TASK_KILLED, "Command terminated with signal Terminated", healthy,
                          None)
                return
            if hc is not None and time.monotonic() >= next_check:
                next_check = time.monotonic() + hc.interval_seconds
                ok = self._probe(cid, hc)
                if ok:
                    failures = 0
                elif time.monotonic() - started >= hc.grace_period_seconds or healthy is not None:
                    failures += 1
                if ok and healthy is not True:
                    healthy = True
                    self.sink(run.key, TaskState.TASK_RUNNING, "", True, "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED")
                elif not ok and healthy is True:
                    healthy = False
                    self.sink(run.key, TaskState.TASK_RUNNING, "", False,
                              "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED")
                if failures >= hc.consecutive_failures:
                    self._stop(cid)
                    self.sink(run.key, TaskState.TASK_KILLED,
                              f"Task was killed since health check failed {failures} times", False,
                              "REASON_TASK_UNHEALTHY")
                    return
            run.kill.wait(0.05)

    def _keep_log(self, key: str, cid: str) -> None:
        try:
            self.outputs[key] = self.runtime.logs(cid)[-4096:].decode(errors="replace")
        except (LabkitError, OSError):
            return
        while len(self.outputs) > 1000:
            self.outputs.pop(next(iter(self.outputs)))

    def _stop(self, cid: str) -> None:
        try:
            self.runtime.stop_container(cid, timeout=self.kill_grace_seconds)
        except LabkitError:
            pass

    def _probe(self, cid: str, hc: HealthCheck) -> bool:
        try:
            return self.runtime.exec_sync(cid, ["sh", "-c", hc.command], timeout=hc.timeout_seconds).exit_code == 0
        except (LabkitError, OSError):
            return False
