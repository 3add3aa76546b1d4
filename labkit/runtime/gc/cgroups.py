"""Leftover cgroups: every folder under ``labkit/`` in every hierarchy, its processes killed first."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from labkit.runtime.gc import Kind, Leak

CGROUP_ROOT = Path("/sys/fs/cgroup")

# --- cgroups -----------------------------------------------------------------------
def _cgroup_dirs() -> list[Path]:
    out: list[Path] = []
    if not CGROUP_ROOT.is_dir():
        return out
    candidates = [CGROUP_ROOT / "labkit"] + [p / "labkit" for p in CGROUP_ROOT.iterdir() if p.is_dir()]
    for top in candidates:
        if top.is_dir():
            out += [p for p in top.rglob("*") if p.is_dir()]
    return out


def _cgroup_leaks() -> list[Leak]:
    return [Leak("cgroups", str(p)) for p in _cgroup_dirs()]


def _remove_cgroups() -> None:
    dirs = sorted(_cgroup_dirs(), key=lambda p: len(p.parts), reverse=True)
    for d in dirs:
        try:
            for pid in (d / "cgroup.procs").read_text().split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
        except OSError:
            pass
    for d in dirs:
        for _ in range(20):
            try:
                d.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)


CGROUPS = Kind("cgroups", _cgroup_leaks, _remove_cgroups)
