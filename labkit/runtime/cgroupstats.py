"""Read a container's cgroup counters: usage for ``container_stats``, OOM kills for ``reason``.

The runtime (runc, crun or labkit's own) creates the cgroup at ``linux.cgroupsPath`` of the
bundle's config; this module only *reads* it, on cgroup v1 (one folder per controller) and v2
(one folder with every file). The kernel's own counters are the evidence for ``OOMKilled``.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


def _read(p: Path) -> str | None:
    try:
        return p.read_text()
    except OSError:
        return None


def _field(text: str | None, key: str) -> int | None:
    if not text:
        return None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key:
            return int(parts[1])
    return None


def _int(text: str | None) -> int | None:
    try:
        return int(text.strip()) if text else None
    except ValueError:
        return None


def _v2_dir(path: str, root: Path) -> Path | None:
    if (root / "cgroup.controllers").exists():
        return root / path.lstrip("/")
    return None


def oom_kills(path: str, root: Path = ROOT) -> int:
    """How many processes the kernel OOM-killed in this cgroup (0 when unknown)."""
    rel = path.lstrip("/")
    v2 = _v2_dir(path, root)
    if v2 is not None:
        return _field(_read(v2 / "memory.events"), "oom_kill") or 0
    mem = root / "memory" / rel
    kills = _field(_read(mem / "memory.oom_control"), "oom_kill")
    if kills:
        return kills
    return 0


def memory_failcnt(path: str, root: Path = ROOT) -> int:
    """v1 only: how often the memory limit was hit (the lab shows it next to oom_kill)."""
    return _int(_read(root / "memory" / path.lstrip("/") / "memory.failcnt")) or 0


def usage(path: str, root: Path = ROOT) -> tuple[int | None, int | None, int | None]:
    """(memory bytes, CPU nanoseconds, pids) now; None where a controller is missing."""
    rel = path.lstrip("/")
    v2 = _v2_dir(path, root)
    if v2 is not None:
        mem = _int(_read(v2 / "memory.current"))
        usec = _field(_read(v2 / "cpu.stat"), "usage_usec")
        pids = _int(_read(v2 / "pids.current"))
        return mem, (usec * 1000 if usec is not None else None), pids
    mem = _int(_read(root / "memory" / rel / "memory.usage_in_bytes"))
    cpu = _int(_read(root / "cpuacct" / rel / "cpuacct.usage"))
    if cpu is None:
        cpu = _int(_read(root / "cpu,cpuacct" / rel / "cpuacct.usage"))
    pids = _int(_read(root / "pids" / rel / "pids.current"))
    return mem, cpu, pids
