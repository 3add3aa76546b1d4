"""What the container labs' exercises read: a learner's container found by name, its process, its
cgroup files, and the clean-up that removes it again.

A learner makes these containers with ``labkit run -d --name NAME ...`` (or the same CRI calls from
Python), so they outlive the cell and the check can find them on the runtime's own records, the
way ``labkit ps`` does. Everything here reads the kernel's view (``/proc``, cgroup files), never
a value the learner could simply write down.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.errors import LabkitError
from labkit.runtime.base import ContainerState, ContainerStatus, Runtime


@dataclass
class Found:
    """A learner's container: the backend that runs it and what the backend says about it."""

    runtime: Runtime
    status: ContainerStatus

    @property
    def running(self) -> bool:
        return self.status.state == ContainerState.RUNNING and self.status.pid is not None

    def cgroup_path(self) -> str | None:
        """The container's cgroup (``/labkit/<id>``), from the runtime's record of it."""
        reader = getattr(self.runtime, "_container", None)
        if reader is None:
            return None
        try:
            return reader(self.status.id)[1].get("cgroups_path")
        except LabkitError:
            return None


def runtime(name: str) -> Runtime | None:
    """The backend called ``name``, or None where this host cannot run it."""
    from labkit.runtime import selection

    try:
        return selection.get(name)
    except LabkitError:
        return None


def find(name: str, backend: str = "native") -> Found | None:
    """The newest container called ``name`` on ``backend`` (None when there is none)."""
    rt = runtime(backend)
    if rt is None:
        return None
    mine = [st for st in rt.list_containers() if st.name == name]
    if not mine:
        return None
    return Found(rt, max(mine, key=lambda st: st.created_at))


LOCAL_BACKENDS = ("native", "runc", "crun")  # the ones ``labkit run`` may pick on a Linux host as root


def find_local(name: str) -> Found | None:
    """The newest container called ``name`` on any local OCI backend: a learner who leaves out
    ``--runtime`` gets whichever this host prefers, and the kernel's view is the same for all."""
    found = [f for f in (find(name, b) for b in LOCAL_BACKENDS) if f is not None]
    return max(found, key=lambda f: f.status.created_at) if found else None


def remove(name: str, backend: str = "native") -> None:
    """Remove every container called ``name`` on ``backend``, with its sandbox (exercise clean-up)."""
    from labkit.runtime.podteardown import remove_pod

    rt = runtime(backend)
    if rt is None:
        return
    for st in rt.list_containers():
        if st.name == name:
            try:
                remove_pod(rt, st.sandbox_id, [st.id], grace=0.5)
            except LabkitError:
                pass


def missing(name: str, backend: str = "native", how: str = "") -> str:
    """The hint for a container that does not exist yet (or a runtime this host cannot use)."""
    from labkit.runtime import selection

    try:
        selection.get(backend)
    except LabkitError as exc:
        return f"{exc}; so there is no container {name!r} to check"
    return (f"there is no container named {name!r} on the {backend} runtime yet (labkit ps -a lists them)"
            + (f"; {how}" if how else ""))


def proc_status(pid: int) -> dict[str, str]:
    """``/proc/PID/status`` as a dict (empty when the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def namespace(pid: int | str, kind: str) -> str | None:
    """The namespace ``kind`` (pid, uts, net ...) of a process, as the kernel names it."""
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


def cgroup_dir(pid: int, controller: str) -> Path | None:
    """The cgroup directory that holds ``pid`` for ``controller`` (v1, or the v2 tree)."""
    from labkit.oci import cgroups

    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    layout = cgroups.host_layout()
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if controller in ctrls.split(",") and controller in layout.v1:
            return layout.v1[controller] / path.lstrip("/")
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if ctrls == "" and layout.v2 is not None:
            return layout.v2 / path.lstrip("/")
    return None


def read_counters(path: Path) -> dict[str, int]:
    """A cgroup file of ``key value`` lines (cpu.stat, pids.events, memory.events) as a dict."""
    out: dict[str, int] = {}
    try:
        for line in path.read_text().splitlines():
            k, _, v = line.partition(" ")
            if v.strip().lstrip("-").isdigit():
                out[k] = int(v)
    except OSError:
        pass
    return out


def processes_in(pid_namespace: str) -> list[int]:
    """Every host PID whose process lives in ``pid_namespace`` (a scan of /proc, as ``lsns`` does)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and namespace(entry, "pid") == pid_namespace:
            out.append(int(entry))
    return sorted(out)


def describe(found: Found) -> str:
    st: Any = found.status
    state = st.state.value.replace("CONTAINER_", "").lower()
    return f"{st.name} is {state}" + (f" (exit {st.exit_code}, {st.reason or 'no reason'})"
                                       if st.exit_code is not None else "")


def run_detached(name: str, command: list[str], backend: str = "native", image: str = "busybox",
                 hostname: str | None = None, memory: str | None = None, cpus: str | None = None,
                 pids: int | None = None) -> str:
    """What ``labkit run -d --name NAME ... IMAGE -- COMMAND`` does, for reference solutions."""
    from labkit.runtime.oneshot import configs, limits, start

    rt = runtime(backend)
    if rt is None:
        raise LabkitError(f"the {backend} runtime cannot run here")
    sconf, cconf = configs(image, command, name, hostname, {}, limits(memory, cpus, pids),
                           {"labkit.io/cli": "true"})
    return start(rt, sconf, cconf)[1]
