"""What a fault changed, written down before it changes it, so that someone can always undo it.

A fault in flight keeps a record, ``<state>/chaos/<id>.json``: its action, target, the pid of the
process running it, and a list of *undo steps* (``{"op": "sigcont", "pid": 123}``). A step is
written before the change it undoes is made, and every step tolerates finding its change never
made or already undone, so a record is right whichever instant the process running the fault
dies. The fault undoes its own steps at the end (or on Ctrl-C); ``labkit gc`` undoes the records
of faults whose process died (kind ``chaos``, :data:`CHAOS`), before it removes anything else.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from labkit import paths
from labkit.atomicfile import write_atomic
from labkit.runtime.gc import Kind, Leak

log = logging.getLogger(__name__)


def records_dir() -> Path:
    p = paths.state_dir() / "chaos"
    p.mkdir(parents=True, exist_ok=True)
    return p


class Journal:
    """The record of one fault in flight; :meth:`add` a step before making the change it undoes."""

    def __init__(self, action: str, target: str, record_id: str | None = None):
        self.id = record_id or f"{action}-{uuid.uuid4().hex[:8]}"
        self.path = records_dir() / f"{self.id}.json"
        self.data = {"id": self.id, "action": action, "target": target, "owner_pid": os.getpid(),
                     "started": time.time(), "steps": []}

    @classmethod
    def load(cls, path: Path) -> Journal:
        data = json.loads(path.read_text())
        j = cls(data["action"], data["target"], data["id"])
        j.data = data
        return j

    @property
    def steps(self) -> list[dict]:
        return self.data["steps"]

    def add(self, op: str, **args: object) -> dict:
        if op not in UNDO:
            raise ValueError(f"no undo step named {op!r}")
        step = {"op": op, **args}
        self.steps.append(step)
        self._save()
        return step

    def _save(self) -> None:
        write_atomic(self.path, json.dumps(self.data, indent=1))

    def undo(self) -> list[str]:
        """Undo every step, newest first; returns the problems (an empty list when all went well).

        A step that fails stays in the record for ``labkit gc`` and the others still run."""
        problems = []
        for step in list(reversed(self.steps)):
            try:
                UNDO[step["op"]](step)
            except Exception as exc:  # noqa: BLE001 - keep undoing the other steps
                problems.append(f"{step['op']}: {exc}")
                continue
            self.steps.remove(step)
            self._save()
        if not self.steps:
            self.path.unlink(missing_ok=True)
        return problems


# ---------------------------------------------------------------- the undo steps
def _run(argv: list[str], netns: str | None = None) -> subprocess.CompletedProcess:
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=20)


def _sigcont(step: dict) -> None:
    try:
        os.kill(int(step["pid"]), signal.SIGCONT)
    except ProcessLookupError:
        pass


def _iptables_delete(step: dict) -> None:
    """Delete the rule while it is there (it may have been added more than once)."""
    netns = step.get("netns")
    if netns and not Path(f"/run/netns/{netns}").exists():
        return  # the namespace went, and the rule with it
    rule = list(step["rule"])
    for _ in range(10):
        if _run(["iptables", "-w", "-t", step.get("table", "filter"), "-C", *rule], netns).returncode != 0:
            return
        res = _run(["iptables", "-w", "-t", step.get("table", "filter"), "-D", *rule], netns)
        if res.returncode != 0:
            raise RuntimeError(f"iptables -D {shlex.join(rule)}: {res.stderr.strip()}")


def _qdisc_delete(step: dict) -> None:
    netns = step.get("netns")
    if netns and not Path(f"/run/netns/{netns}").exists():
        return
    _run(["tc", "qdisc", "del", "dev", step["dev"], "root"], netns)  # gone already: nothing to do


def _cgroup_restore(step: dict) -> None:
    """Move every process out of a fault's cgroup back to where they were, then remove it."""
    group = Path(step["path"])
    back = Path(step["back"]) / "cgroup.procs"
    if not group.is_dir():
        return
    for _ in range(20):
        pids = (group / "cgroup.procs").read_text().split()
        if not pids:
            break
        for pid in pids:
            try:
                back.write_text(pid)
            except OSError:  # it exited meanwhile
                pass
    group.rmdir()


def _remove_file(step: dict) -> None:
    Path(step["path"]).unlink(missing_ok=True)


def _unmount(step: dict) -> None:
    target = step["path"]
    if os.path.ismount(target):
        res = _run(["umount", target])
        if res.returncode != 0:
            raise RuntimeError(f"umount {target}: {res.stderr.strip()} (a process still uses it?)")
    try:
        os.rmdir(target)
    except OSError:
        pass


def _stop_process(step: dict) -> None:
    """End a helper the fault started (checked by its command line, so a reused pid is left alone)."""
    pid = int(step["pid"])
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return
    if step["marker"] in cmdline:
        os.kill(pid, signal.SIGTERM)


def _start_component(step: dict) -> None:
    """Start a cluster component again from the command line its state file recorded - only while
    the rest of that cluster runs (a stopped cluster's kubelet would run on alone)."""
    from labkit.chaos.target import restart_component
    from labkit.cluster import statefile

    state = Path(step["cluster_dir"]) / statefile.STATE_FILE
    if not state.exists():
        return
    apiserver = statefile.components(json.loads(state.read_text())).get("apiserver")
    if apiserver is None or not apiserver.alive:
        return
    restart_component(Path(step["cluster_dir"]), step["component"])


def _uncordon(step: dict) -> None:
    from labkit.chaos.target import api_client
    from labkit.client.rest import ApiError

    if not Path(step["kubeconfig"]).exists():
        return  # the cluster is gone, and its node with it
    api = api_client(step["kubeconfig"])
    try:
        api.call("patch", "nodes", step["node"], {"spec": {"unschedulable": None}})
    except ApiError as exc:
        if exc.code != 404:
            raise
    finally:
        api.close()


UNDO: dict[str, Callable[[dict], None]] = {
    "sigcont": _sigcont,
    "iptables-delete": _iptables_delete,
    "qdisc-delete": _qdisc_delete,
    "cgroup-restore": _cgroup_restore,
    "remove-file": _remove_file,
    "unmount": _unmount,
    "stop-process": _stop_process,
    "start-component": _start_component,
    "uncordon": _uncordon,
}


# ---------------------------------------------------------------- labkit gc
def _owner_alive(data: dict) -> bool:
    pid = data.get("owner_pid")
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except OSError:
        return False
    return True


def orphans() -> list[Path]:
    """Records of faults whose process died before undoing them."""
    out = []
    for f in sorted(records_dir().glob("*.json")):
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if not _owner_alive(data):
            out.append(f)
    return out


def _leaks() -> list[Leak]:
    out = []
    for f in orphans():
        j = Journal.load(f)
        ops = ", ".join(s["op"] for s in j.steps) or "nothing"
        out.append(Leak("chaos", f"{j.data['action']} on {j.data['target']} (undo: {ops}) {f}"))
    return out


def _remove() -> None:
    for f in orphans():
        for problem in Journal.load(f).undo():
            log.warning("chaos record %s: %s", f.name, problem)


CHAOS = Kind("chaos", _leaks, _remove)
