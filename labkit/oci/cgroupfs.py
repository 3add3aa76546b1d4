"""The light core of labkit's cgroup code: the host's layout, writes, counters and one
container's cgroup on plain paths, with nothing but ``os``.

:mod:`labkit.oci.cgroups` is the full interface (stats, freezing, leftovers, fake v2 trees for
tests) and builds on this module: the mount table is parsed here only, every control file is
written through :func:`write`, and counter files are read by :func:`counters`. ``labkit run
--rm`` (:mod:`labkit.cli.fastpath.foreground`) uses :class:`Cgroup` below, because the full
interface imports dataclasses and pathlib, which cost more than a container start; a test
checks that both put a container in the same places with the same limits.
"""

from __future__ import annotations

import os
import time

CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "freezer", "devices")  # the v1 hierarchies labkit uses
V2_CONTROLLERS = ("memory", "cpu", "pids")
# every v1 controller a mount option can name (what ``labkit doctor`` lists)
V1_KINDS = frozenset({"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
                      "net_cls", "net_prio", "perf_event", "hugetlb", "rdma", "misc"})


class CgroupError(RuntimeError):
    """A cgroup that cannot be created, limited or removed; the message says what to do."""


def read_mounts(mounts_file: str = "/proc/self/mounts") -> tuple[dict[str, str], list[str], list[str], str | None]:
    """The cgroup file systems in the mount table: (v1 controller labkit uses -> mount point,
    every v1 mount point, every v1 controller mounted, the first v2 mount point or None).

    An unreadable table reads as no cgroups at all."""
    v1: dict[str, str] = {}
    all_v1: list[str] = []
    kinds: set[str] = set()
    v2 = None
    try:
        with open(mounts_file) as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        parts = line.split()
        if len(parts) < 4:
            continue
        if parts[2] == "cgroup":
            all_v1.append(parts[1])
            for o in parts[3].split(","):
                if o in V1_KINDS:
                    kinds.add(o)
                if o in CONTROLLERS:
                    v1.setdefault(o, parts[1])
        elif parts[2] == "cgroup2" and v2 is None:
            v2 = parts[1]
    return v1, all_v1, sorted(kinds), v2


def v2_controllers(v2: str | None) -> list[str]:
    """The controllers a v2 tree offers (its ``cgroup.controllers``, in the kernel's order)."""
    if v2 is None:
        return []
    try:
        with open(os.path.join(v2, "cgroup.controllers")) as f:
            return f.read().split()
    except OSError:
        return []


def host_layout(mounts_file: str = "/proc/self/mounts") -> tuple[dict[str, str], str | None, set[str]]:
    """(v1 controller -> mount point, v2 mount point or None, controllers the v2 tree offers)."""
    v1, _all, _kinds, v2 = read_mounts(mounts_file)
    return v1, v2, set(v2_controllers(v2))


def write(path: str, value: str, create: bool = False) -> None:
    """Write one value into a control file (one write: the kernel takes one value per write);
    ``create`` for the plain files of a fake tree."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | ((os.O_CREAT | os.O_TRUNC) if create else 0), 0o644)
    except PermissionError as exc:
        raise CgroupError(f"cannot write {path}: permission denied (cgroups need root)") from exc
    except OSError as exc:
        raise CgroupError(f"cannot open {path}: {exc.strerror}") from exc
    try:
        os.write(fd, value.encode())
    except OSError as exc:
        raise CgroupError(f"cannot write {value.strip()!r} to {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)


def read(path: str) -> str:
    """A control or counter file's text; empty when it is missing or unreadable."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def counters(text: str) -> dict[str, int]:
    """``key value`` lines (``memory.events``, ``cpu.stat``, ``memory.oom_control``) as a dict."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


class Cgroup:
    """``/labkit/<id>`` in every hierarchy the host mounts (v2 only where it carries a controller)."""

    def __init__(self, path: str) -> None:
        self.rel = path.strip("/")
        v1, v2, ctrls = host_layout()
        self.v2_controllers = ctrls
        self.v1 = {c: os.path.join(m, self.rel) for c, m in v1.items()}
        use_v2 = v2 is not None and (not v1 or bool((ctrls & set(V2_CONTROLLERS)) - set(v1)))
        self.v2_root = v2 if use_v2 else None
        self.v2 = os.path.join(v2, self.rel) if use_v2 and v2 is not None else None
        if not v1 and v2 is None:
            raise CgroupError("this host has no cgroup file system mounted; limits are unavailable")

    def dirs(self) -> list[str]:
        out: list[str] = []
        for d in list(self.v1.values()) + ([self.v2] if self.v2 else []):
            if d not in out:
                out.append(d)
        return out

    def _ctrl_dir(self, controller: str) -> tuple[str | None, int]:
        if controller in self.v1:
            return self.v1[controller], 1
        if self.v2 and controller in self.v2_controllers:
            return self.v2, 2
        return None, 0

    def create(self, resources: dict | None) -> list[str]:
        """Make the directories, apply ``linux.resources``; return the files a process joins through."""
        for d in self.dirs():
            try:
                os.makedirs(d, exist_ok=True)
            except OSError as exc:
                raise CgroupError(f"cannot create cgroup {d}: {exc.strerror}") from exc
        wanted = [c for c in V2_CONTROLLERS if c in self.v2_controllers and c not in self.v1]
        if self.v2 and self.v2_root and wanted:
            node = self.v2_root
            for part in self.rel.split("/"):
                ctl = os.path.join(node, "cgroup.subtree_control")
                try:
                    with open(ctl) as f:
                        have = set(f.read().split())
                except OSError:
                    have = set(wanted)
                missing = [c for c in wanted if c not in have]
                if missing:
                    write(ctl, " ".join("+" + c for c in missing))
                node = os.path.join(node, part)
        self._limit(resources or {})
        return [os.path.join(d, "cgroup.procs" if d == self.v2 else "tasks") for d in self.dirs()]

    def _limit(self, res: dict) -> None:
        mem = (res.get("memory") or {}).get("limit")
        if mem is not None:
            d, v = self._ctrl_dir("memory")
            if d is None:
                raise CgroupError("this host has no memory controller; a memory limit cannot be set")
            write(os.path.join(d, "memory.limit_in_bytes" if v == 1 else "memory.max"), str(int(mem)))
        cpu = res.get("cpu") or {}
        if cpu.get("quota") is not None:
            d, v = self._ctrl_dir("cpu")
            if d is None:
                raise CgroupError("this host has no cpu controller; a CPU quota cannot be set")
            period, quota = int(cpu.get("period") or 100_000), int(cpu["quota"])
            if v == 1:
                write(os.path.join(d, "cpu.cfs_period_us"), str(period))
                write(os.path.join(d, "cpu.cfs_quota_us"), str(quota))
            else:
                write(os.path.join(d, "cpu.max"), f"{quota if quota > 0 else 'max'} {period}")
        pids = (res.get("pids") or {}).get("limit")
        if pids is not None:
            d, _v = self._ctrl_dir("pids")
            if d is None:
                raise CgroupError("this host has no pids controller; a pids limit cannot be set")
            write(os.path.join(d, "pids.max"), str(int(pids)) if int(pids) > 0 else "max")
        devices = res.get("devices")
        if devices and "devices" in self.v1:
            try:
                write_device_rules(self.v1["devices"], devices)
            except OSError as exc:
                raise CgroupError(f"cannot set device rules in {self.v1['devices']}: {exc.strerror}") from exc
        elif devices and self.v2:
            from labkit.oci import devicefilter  # cgroup v2: the rules become a BPF program

            try:
                devicefilter.attach(self.v2, devices)
            except (OSError, ValueError) as exc:
                raise CgroupError(f"cannot set device rules on {self.v2}: {exc}") from exc

    def oom_kills(self) -> int:
        """The kernel's own count of OOM kills in this cgroup."""
        d, v = self._ctrl_dir("memory")
        if d is None:
            return 0
        return counters(read(os.path.join(d, "memory.oom_control" if v == 1 else "memory.events"))).get("oom_kill", 0)

    def _pids(self) -> list[int]:
        out: set[int] = set()
        for d in self.dirs():
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    out.update(int(t) for t in f.read().split())
            except (OSError, ValueError):
                pass
        return sorted(out)

    def destroy(self, timeout: float = 5.0) -> None:
        """Remove every directory; SIGKILL what is still inside and wait out EBUSY if needed.

        After the container's PID 1 has been reaped its namespace is empty, so the first rmdir
        usually just works; reading every ``cgroup.procs`` first would cost each start ~0.1 ms."""
        deadline = time.monotonic() + timeout
        errors = []
        for d in self.dirs():
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != 16 or time.monotonic() > deadline:  # EBUSY: processes, or an exit settling
                        errors.append(f"{d}: {exc.strerror}")
                        break
                    for pid in self._pids():
                        try:
                            os.kill(pid, 9)
                        except ProcessLookupError:
                            pass
                    time.sleep(0.01)
        if errors:
            raise CgroupError("could not remove cgroup: " + "; ".join(errors))


def device_rule(rule: dict) -> tuple[str, str]:
    """(file, line) for one OCI device rule in the v1 devices controller: ``c 1:3 rwm`` into devices.allow."""
    kind = rule.get("type") or "a"
    major = "*" if rule.get("major") in (None, -1) else rule["major"]
    minor = "*" if rule.get("minor") in (None, -1) else rule["minor"]
    entry = "a" if kind == "a" else f"{kind} {major}:{minor} {rule.get('access', 'rwm')}"
    return ("devices.allow" if rule.get("allow") else "devices.deny"), entry


def write_device_rules(folder: str, rules: list[dict]) -> None:
    """Write OCI device rules into a v1 devices cgroup: one open per file, one rule per write()
    (the kernel takes one per write). Raises OSError."""
    files: dict[str, int] = {}
    try:
        for rule in rules:
            name, entry = device_rule(rule)
            if name not in files:
                files[name] = os.open(os.path.join(folder, name), os.O_WRONLY | os.O_CLOEXEC)
            os.write(files[name], entry.encode())
    finally:
        for fd in files.values():
            os.close(fd)

