"""One container's cgroup on plain paths: the steps :class:`labkit.oci.cgroups.Cgroup` takes for
``create``, ``set_resources``, ``join_files``, ``oom_killed`` and ``destroy``, for the short way
to a container (:mod:`labkit.oci.native.foreground`).

:mod:`labkit.oci.cgroups` is the full interface (stats, freezing, fake v2 trees for tests); it
imports dataclasses and pathlib, which cost more than a container start. This module keeps its
rules (the same controllers, the same directories on v1, v2 and hybrid hosts, the same device
allow-list) with nothing but ``os``; a test checks that both put a container in the same places.
"""

from __future__ import annotations

import os
import time

CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "freezer", "devices")  # as labkit.oci.cgroups
V2_CONTROLLERS = ("memory", "cpu", "pids")


class CgroupError(RuntimeError):
    """A cgroup that cannot be created, limited or removed."""


def host_layout(mounts_file: str = "/proc/self/mounts") -> tuple[dict[str, str], str | None, set[str]]:
    """(v1 controller -> mount point, v2 mount point or None, controllers the v2 tree offers)."""
    v1: dict[str, str] = {}
    v2 = None
    with open(mounts_file) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 4:
                continue
            if parts[2] == "cgroup":
                for o in parts[3].split(","):
                    if o in CONTROLLERS:
                        v1.setdefault(o, parts[1])
            elif parts[2] == "cgroup2" and v2 is None:
                v2 = parts[1]
    ctrls: set[str] = set()
    if v2 is not None:
        try:
            with open(os.path.join(v2, "cgroup.controllers")) as f:
                ctrls = set(f.read().split())
        except OSError:
            pass
    return v1, v2, ctrls


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
                    _write(ctl, " ".join("+" + c for c in missing))
                node = os.path.join(node, part)
        self._limit(resources or {})
        return [os.path.join(d, "cgroup.procs" if d == self.v2 else "tasks") for d in self.dirs()]

    def _limit(self, res: dict) -> None:
        mem = (res.get("memory") or {}).get("limit")
        if mem is not None:
            d, v = self._ctrl_dir("memory")
            if d is None:
                raise CgroupError("this host has no memory controller; a memory limit cannot be set")
            _write(os.path.join(d, "memory.limit_in_bytes" if v == 1 else "memory.max"), str(int(mem)))
        cpu = res.get("cpu") or {}
        if cpu.get("quota") is not None:
            d, v = self._ctrl_dir("cpu")
            if d is None:
                raise CgroupError("this host has no cpu controller; a CPU quota cannot be set")
            period, quota = int(cpu.get("period") or 100_000), int(cpu["quota"])
            if v == 1:
                _write(os.path.join(d, "cpu.cfs_period_us"), str(period))
                _write(os.path.join(d, "cpu.cfs_quota_us"), str(quota))
            else:
                _write(os.path.join(d, "cpu.max"), f"{quota if quota > 0 else 'max'} {period}")
        pids = (res.get("pids") or {}).get("limit")
        if pids is not None:
            d, _v = self._ctrl_dir("pids")
            if d is None:
                raise CgroupError("this host has no pids controller; a pids limit cannot be set")
            _write(os.path.join(d, "pids.max"), str(int(pids)) if int(pids) > 0 else "max")
        devices = res.get("devices")
        if devices and "devices" in self.v1:
            try:
                write_device_rules(self.v1["devices"], devices)
            except OSError as exc:
                raise CgroupError(f"cannot set device rules in {self.v1['devices']}: {exc.strerror}") from exc

    def oom_kills(self) -> int:
        """The kernel's own count of OOM kills in this cgroup."""
        d, v = self._ctrl_dir("memory")
        if d is None:
            return 0
        try:
            with open(os.path.join(d, "memory.oom_control" if v == 1 else "memory.events")) as f:
                for line in f:
                    k, _, n = line.partition(" ")
                    if k == "oom_kill":
                        return int(n)
        except (OSError, ValueError):
            pass
        return 0

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


def _write(path: str, value: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise CgroupError(f"cannot open {path}: {exc.strerror}") from exc
    try:
        os.write(fd, value.encode())
    except OSError as exc:
        raise CgroupError(f"cannot write {value.strip()!r} to {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)
