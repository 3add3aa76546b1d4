"""Control groups for containers, on cgroup v1, v2 and the hybrid of both.

A namespace decides what a process can *see*; a cgroup decides how much it can *use*. The kernel
offers two interfaces:

* **v1** (this book's build machine): one hierarchy per controller, e.g.
  ``/sys/fs/cgroup/memory/labkit/<id>/memory.limit_in_bytes``, OOM counters in
  ``memory.failcnt`` and ``memory.oom_control``.
* **v2** (most current distributions): one tree, ``/sys/fs/cgroup/labkit/<id>/memory.max``,
  ``cpu.max``, ``pids.max``; OOM counters in ``memory.events``; ``cgroup.kill`` and
  ``cgroup.freeze`` act on the whole group at once.

A *hybrid* host has both; labkit then puts a container in every v1 hierarchy for the controllers
and also in the v2 tree, so that ``cgroup.kill``/``cgroup.events`` work there too.

Contract::

    layout = detect_layout()                     # or fake_v2_layout(tmpdir) in tests
    cg = Cgroup("/labkit/<id>", layout)
    cg.create(); cg.set_resources(config["linux"]["resources"])
    cg.add(pid)  /  cg.procs_files()             # the files a child writes "0" into
    cg.oom_counters() -> {"oom_kill": n, ...};  cg.oom_killed() -> bool
    cg.stats() -> {"memory_bytes", "cpu_usage_ns", "pids"}
    cg.freeze(); cg.thaw(); cg.kill(); cg.destroy()
    leftovers(layout) -> ["/labkit/<id>", ...]   # what a killed run left (for ``labkit gc``)
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.oci import cgroupfs
from labkit.oci.cgroupfs import CONTROLLERS, V2_CONTROLLERS, CgroupError, counters, write_device_rules

__all__ = ["CONTROLLERS", "V2_CONTROLLERS", "Cgroup", "CgroupError", "CgroupLayout", "destroy_everywhere",
           "detect_layout", "fake_v2_layout", "host_layout", "layout_at", "leftovers", "memory_failcnt",
           "oom_kills", "usage"]


@dataclass
class CgroupLayout:
    """Where each controller is mounted on this host."""

    mode: str  # "v1", "v2", "hybrid" or "none"
    v1: dict[str, Path] = field(default_factory=dict)  # controller -> hierarchy mount point
    v2: Path | None = None  # the unified (v2) mount point
    v2_controllers: list[str] = field(default_factory=list)  # in the kernel's order
    fake: bool = False  # plain files in a tmp dir (tests), not a kernel file system
    all_v1: list[Path] = field(default_factory=list)  # every v1 hierarchy (blkio, cpuset, name=systemd ...)
    v1_controllers: list[str] = field(default_factory=list)  # every v1 controller mounted, sorted

    @property
    def v2_mount(self) -> str | None:
        return str(self.v2) if self.v2 is not None else None

    def describe(self) -> str:
        """One line for lab output: which cgroup interface limits really go through."""
        if self.mode == "v1":
            return "cgroup v1 (one hierarchy per controller)"
        if self.mode == "v2":
            return f"cgroup v2 (unified tree at {self.v2})"
        if self.mode == "hybrid":
            ctrls = ",".join(sorted(self.v2_controllers)) or "no controllers"
            return f"hybrid: cgroup v1 controllers, plus a v2 tree at {self.v2} ({ctrls})"
        return "no cgroups mounted"


def detect_layout(mounts_file: str = "/proc/self/mounts") -> CgroupLayout:
    """Read the mount table and find the v1 hierarchies and the v2 tree."""
    v1, all_v1, kinds, v2 = cgroupfs.read_mounts(mounts_file)
    if v1 and v2 is not None:
        mode = "hybrid"
    elif v1:
        mode = "v1"
    elif v2 is not None:
        mode = "v2"
    else:
        mode = "none"
    return CgroupLayout(mode, {c: Path(m) for c, m in v1.items()}, Path(v2) if v2 is not None else None,
                        cgroupfs.v2_controllers(v2), all_v1=[Path(m) for m in all_v1], v1_controllers=kinds)


_HOST_LAYOUT: CgroupLayout | None = None


def host_layout() -> CgroupLayout:
    """:func:`detect_layout` for this host, read once per process (mounts of cgroup file systems
    do not change while labkit runs, and reading the mount table costs a container start ~0.5 ms)."""
    global _HOST_LAYOUT
    if _HOST_LAYOUT is None:
        _HOST_LAYOUT = detect_layout()
    return _HOST_LAYOUT


def fake_v2_layout(root: str | os.PathLike[str]) -> CgroupLayout:
    """A cgroup v2 tree made of plain files in ``root``, for testing the v2 code on a v1 host."""
    r = Path(root)
    r.mkdir(parents=True, exist_ok=True)
    (r / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (r / "cgroup.subtree_control").write_text("")
    (r / "cgroup.procs").write_text("")
    return CgroupLayout("v2", {}, r, ["cpuset", "cpu", "io", "memory", "pids"], fake=True)


def _write(path: Path, value: str) -> None:
    cgroupfs.write(str(path), value, create=True)  # create: the plain files of a fake tree


def _read(path: Path) -> str:
    return cgroupfs.read(str(path))


class Cgroup:
    """One container's cgroup, in every hierarchy the layout has."""

    def __init__(self, path: str, layout: CgroupLayout | None = None, include_v2: bool | None = None) -> None:
        """``include_v2``: on a hybrid host, also use the v2 tree (for cgroup.kill/freeze/events).

        The default (None) uses it only where it carries a controller; joining a v2 cgroup costs
        an RCU grace period (~10-25 ms here), more than the rest of a container start.
        """
        rel = path.strip("/")
        if not rel or ".." in rel.split("/"):
            raise CgroupError(f"bad cgroup path {path!r}: use something like /labkit/<id>")
        self.path = "/" + rel
        self.layout = layout or host_layout()
        self.v1: dict[str, Path] = {c: m / rel for c, m in self.layout.v1.items()}
        use_v2 = include_v2
        if use_v2 is None:
            use_v2 = self.layout.mode == "v2" or bool(
                set(self.layout.v2_controllers).intersection(V2_CONTROLLERS) - set(self.layout.v1))
        self.v2: Path | None = self.layout.v2 / rel if self.layout.v2 is not None and use_v2 else None

    # --- where things live -------------------------------------------------
    def _ctrl_dir(self, controller: str) -> tuple[Path | None, int]:
        """(directory, version) that holds ``controller``; (None, 0) when no hierarchy has it."""
        if controller in self.v1:
            return self.v1[controller], 1
        if self.v2 is not None and controller in self.layout.v2_controllers:
            return self.v2, 2
        return None, 0

    def dirs(self) -> list[Path]:
        """Every directory this cgroup occupies (deduplicated co-mounted hierarchies)."""
        seen: list[Path] = []
        for d in list(self.v1.values()) + ([self.v2] if self.v2 is not None else []):
            if d not in seen:
                seen.append(d)
        return seen

    def exists(self) -> bool:
        return any(d.is_dir() for d in self.dirs())

    # --- life cycle ----------------------------------------------------------
    def create(self) -> Cgroup:
        """Make the directories (and, on v2, enable the controllers on the way down)."""
        if self.layout.mode == "none":
            raise CgroupError("this host has no cgroup file system mounted; limits are unavailable")
        for d in self.dirs():
            try:
                d.mkdir(parents=True, exist_ok=True)
            except PermissionError as exc:
                raise CgroupError(f"cannot create cgroup {d}: permission denied (run as root)") from exc
            except OSError as exc:
                raise CgroupError(f"cannot create cgroup {d}: {exc.strerror}") from exc
        if self.v2 is not None and set(self.layout.v2_controllers).intersection(V2_CONTROLLERS):
            self._enable_v2_controllers()
        if self.layout.fake and self.v2 is not None:
            _populate_fake_v2(self.v2)
        return self

    def _enable_v2_controllers(self) -> None:
        assert self.v2 is not None and self.layout.v2 is not None
        wanted = [c for c in V2_CONTROLLERS if c in self.layout.v2_controllers and c not in self.v1]
        if not wanted:
            return
        node = self.layout.v2
        for part in Path(self.path.strip("/")).parts:
            ctl = node / "cgroup.subtree_control"
            if ctl.exists():
                have = set(_read(ctl).split())
                missing = [c for c in wanted if c not in have]
                if missing:
                    if self.layout.fake:
                        _write(ctl, " ".join(sorted(have | set(missing))) + "\n")
                    else:
                        _write(ctl, " ".join("+" + c for c in missing))
            node = node / part

    def set_resources(self, resources: dict[str, Any] | None) -> None:
        """Apply an OCI ``linux.resources`` block (memory, cpu, pids, devices)."""
        res = resources or {}
        mem = (res.get("memory") or {}).get("limit")
        if mem is not None:
            d, v = self._ctrl_dir("memory")
            if d is None:
                raise CgroupError("this host has no memory controller; a memory limit cannot be set")
            if v == 1:
                _write(d / "memory.limit_in_bytes", str(int(mem)))
                swap = (res.get("memory") or {}).get("swap")
                if swap is not None and (d / "memory.memsw.limit_in_bytes").exists():
                    _write(d / "memory.memsw.limit_in_bytes", str(int(swap)))
            else:
                _write(d / "memory.max", str(int(mem)))
                swap = (res.get("memory") or {}).get("swap")
                if swap is not None:
                    _write(d / "memory.swap.max", str(max(0, int(swap) - int(mem))))
        cpu = res.get("cpu") or {}
        if cpu.get("quota") is not None:
            d, v = self._ctrl_dir("cpu")
            if d is None:
                raise CgroupError("this host has no cpu controller; a CPU quota cannot be set")
            period = int(cpu.get("period") or 100_000)
            quota = int(cpu["quota"])
            if v == 1:
                _write(d / "cpu.cfs_period_us", str(period))
                _write(d / "cpu.cfs_quota_us", str(quota))
            else:
                _write(d / "cpu.max", f"{quota if quota > 0 else 'max'} {period}")
        pids = (res.get("pids") or {}).get("limit")
        if pids is not None:
            d, _v = self._ctrl_dir("pids")
            if d is None:
                raise CgroupError("this host has no pids controller; a pids limit cannot be set")
            _write(d / "pids.max", str(int(pids)) if int(pids) > 0 else "max")
        devices = res.get("devices")
        if devices and "devices" in self.v1:
            d = self.v1["devices"]
            try:
                write_device_rules(str(d), devices)
            except OSError as exc:
                raise CgroupError(f"cannot set device rules in {d}: {exc.strerror}") from exc
        elif devices and self.v2 is not None and not self.layout.fake:
            from labkit.oci import devicefilter  # cgroup v2: the rules become a BPF program

            try:
                devicefilter.attach(str(self.v2), devices)
            except (OSError, ValueError) as exc:
                raise CgroupError(f"cannot set device rules on {self.v2}: {exc}") from exc

    def procs_files(self) -> list[Path]:
        """The ``cgroup.procs`` files a process writes ``0`` into to join this cgroup everywhere."""
        return [d / "cgroup.procs" for d in self.dirs()]

    def join_files(self) -> list[Path]:
        """The files a single-threaded process writes ``0`` into to move itself here.

        On v1 that is ``tasks``: moving one thread skips the global lock that a ``cgroup.procs``
        write takes (an RCU grace period, about a millisecond per hierarchy).
        """
        out = []
        for d in self.dirs():
            out.append(d / ("cgroup.procs" if d == self.v2 else "tasks"))
        return out

    def add(self, pid: int) -> None:
        for f in self.procs_files():
            _write(f, str(pid))

    def pids(self) -> list[int]:
        out: set[int] = set()
        for f in self.procs_files():
            for tok in _read(f).split():
                if tok.isdigit():
                    out.add(int(tok))
        return sorted(out)

    # --- what the kernel counted -----------------------------------------------
    def oom_counters(self) -> dict[str, int]:
        """The kernel's own OOM counters: v1 ``failcnt``/``oom_kill``; v2 ``memory.events``."""
        d, v = self._ctrl_dir("memory")
        if d is None:
            return {}
        if v == 1:
            out = {"failcnt": int(_read(d / "memory.failcnt").strip() or 0)}
            if (d / "memory.memsw.failcnt").exists():
                out["memsw_failcnt"] = int(_read(d / "memory.memsw.failcnt").strip() or 0)
            oc = counters(_read(d / "memory.oom_control"))
            out["oom_kill"] = oc.get("oom_kill", 0)
            out["under_oom"] = oc.get("under_oom", 0)
            return out
        ev = counters(_read(d / "memory.events"))
        return {k: ev.get(k, 0) for k in ("max", "oom", "oom_kill")}

    def oom_killed(self) -> bool:
        return self.oom_counters().get("oom_kill", 0) > 0

    def stats(self) -> dict[str, int | None]:
        out: dict[str, int | None] = {"memory_bytes": None, "cpu_usage_ns": None, "pids": None}
        d, v = self._ctrl_dir("memory")
        if d is not None:
            raw = _read(d / ("memory.usage_in_bytes" if v == 1 else "memory.current")).strip()
            # the working set, as the kubelet (cAdvisor) counts it: usage less the page cache the
            # kernel may reclaim at once (inactive file pages)
            inactive = counters(_read(d / "memory.stat")).get("total_inactive_file" if v == 1 else "inactive_file", 0)
            out["memory_bytes"] = max(0, int(raw) - inactive) if raw.isdigit() else None
        d, v = self._ctrl_dir("cpuacct") if "cpuacct" in self.v1 else self._ctrl_dir("cpu")
        if d is not None:
            if v == 1:
                raw = _read(d / "cpuacct.usage").strip()
                out["cpu_usage_ns"] = int(raw) if raw.isdigit() else None
            else:
                usec = counters(_read(d / "cpu.stat")).get("usage_usec")
                out["cpu_usage_ns"] = usec * 1000 if usec is not None else None
        d, _v = self._ctrl_dir("pids")
        if d is not None:
            raw = _read(d / "pids.current").strip()
            out["pids"] = int(raw) if raw.isdigit() else None
        return out

    def events(self) -> dict[str, int]:
        """v2 ``cgroup.events`` (``populated``, ``frozen``); empty without a v2 tree."""
        if self.v2 is None:
            return {}
        return counters(_read(self.v2 / "cgroup.events"))

    def memory_limit(self) -> int | None:
        d, v = self._ctrl_dir("memory")
        if d is None:
            return None
        raw = _read(d / ("memory.limit_in_bytes" if v == 1 else "memory.max")).strip()
        return int(raw) if raw.isdigit() else None

    # --- acting on the whole group ---------------------------------------------
    def freeze(self) -> None:
        if self.v2 is not None and (self.v2 / "cgroup.freeze").exists():
            _write(self.v2 / "cgroup.freeze", "1")
        elif "freezer" in self.v1:
            _write(self.v1["freezer"] / "freezer.state", "FROZEN")
        else:
            raise CgroupError("this host has no freezer; cannot pause the container")

    def thaw(self) -> None:
        if self.v2 is not None and (self.v2 / "cgroup.freeze").exists():
            _write(self.v2 / "cgroup.freeze", "0")
        elif "freezer" in self.v1:
            _write(self.v1["freezer"] / "freezer.state", "THAWED")

    def kill(self, sig: int = 9) -> None:
        """Signal every process in the group; ``cgroup.kill`` when SIGKILL on v2, else one by one."""
        if sig == 9 and self.v2 is not None and not self.layout.fake \
                and (self.v2 / "cgroup.kill").exists():
            _write(self.v2 / "cgroup.kill", "1")
            return
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def destroy(self, timeout: float = 5.0) -> None:
        """Kill what is left and remove every directory; raises if a directory stays busy."""
        deadline = time.monotonic() + timeout
        while self.pids() and time.monotonic() < deadline:
            self.kill()
            time.sleep(0.01)
        errors = []
        for d in self.dirs():
            if not d.is_dir():
                continue
            if self.layout.fake:
                shutil.rmtree(d, ignore_errors=True)
                continue
            for _ in range(100):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != 16 or time.monotonic() > deadline:  # EBUSY
                        errors.append(f"{d}: {exc.strerror}")
                        break
                    time.sleep(0.01)
        if errors:
            raise CgroupError("could not remove cgroup: " + "; ".join(errors))


def _populate_fake_v2(d: Path) -> None:
    """Give a fake v2 cgroup the files the kernel would create, with their initial values."""
    initial = {
        "cgroup.procs": "", "cgroup.events": "populated 0\nfrozen 0\n", "cgroup.freeze": "0\n",
        "cgroup.kill": "", "cgroup.subtree_control": "", "memory.max": "max\n", "memory.swap.max": "max\n",
        "memory.current": "0\n", "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
        "cpu.max": "max 100000\n", "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
        "pids.max": "max\n", "pids.current": "0\n",
    }
    for name, value in initial.items():
        f = d / name
        if not f.exists():
            f.write_text(value)


def leftovers(layout: CgroupLayout | None = None, prefix: str = "labkit") -> list[str]:
    """Cgroup paths (``/labkit/<id>``) that exist in any hierarchy: what ``labkit gc`` removes."""
    lay = layout or detect_layout()
    found: set[str] = set()
    roots = list(dict.fromkeys(list(lay.v1.values()) + lay.all_v1 + ([lay.v2] if lay.v2 is not None else [])))
    for root in roots:
        base = root / prefix
        if not base.is_dir():
            continue
        for child in base.iterdir():
            if child.is_dir():
                found.add(f"/{prefix}/{child.name}")
    return sorted(found)


def destroy_everywhere(path: str, layout: CgroupLayout | None = None) -> None:
    """Remove cgroup ``path`` from every hierarchy, including ones labkit does not use itself
    (runc also creates blkio, cpuset and name=systemd groups); for ``labkit gc`` and tests."""
    lay = layout or detect_layout()
    Cgroup(path, lay, include_v2=True).destroy()
    rel = path.strip("/")
    for root in lay.all_v1:
        d = root / rel
        if d.is_dir():
            try:
                d.rmdir()
            except OSError as exc:
                raise CgroupError(f"could not remove cgroup {d}: {exc.strerror}") from exc


# --- one container's counters, for the CRI's container_stats and the OOMKilled reason ----------
def layout_at(root: str | os.PathLike[str]) -> CgroupLayout:
    """The layout of cgroup file systems mounted the usual way under ``root``: a v2 tree there,
    or one v1 hierarchy per controller folder (``root/memory``, ``root/cpu,cpuacct``)."""
    r = Path(root)
    if (r / "cgroup.controllers").exists():
        return CgroupLayout("v2", {}, r, cgroupfs.v2_controllers(str(r)))
    v1: dict[str, Path] = {}
    for d in sorted(r.iterdir()) if r.is_dir() else []:
        for c in d.name.split(","):
            if c in CONTROLLERS:
                v1.setdefault(c, d)
    return CgroupLayout("v1" if v1 else "none", v1)


def _existing(path: str, root: str | os.PathLike[str] | None) -> Cgroup:
    return Cgroup(path, layout_at(root) if root is not None else host_layout())


def oom_kills(path: str, root: str | os.PathLike[str] | None = None) -> int:
    """How many processes the kernel OOM-killed in cgroup ``path`` (0 when unknown); the cgroup
    a runtime (runc, crun or labkit's own) made at the bundle's ``linux.cgroupsPath``."""
    return _existing(path, root).oom_counters().get("oom_kill", 0)


def memory_failcnt(path: str, root: str | os.PathLike[str] | None = None) -> int:
    """v1 only: how often the memory limit was hit (the lab shows it next to oom_kill)."""
    return _existing(path, root).oom_counters().get("failcnt", 0)


def usage(path: str, root: str | os.PathLike[str] | None = None) -> tuple[int | None, int | None, int | None]:
    """(memory bytes, CPU nanoseconds, pids) now; None where a controller is missing."""
    st = _existing(path, root).stats()
    return st["memory_bytes"], st["cpu_usage_ns"], st["pids"]
