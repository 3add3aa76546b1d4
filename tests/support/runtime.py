"""Shared helpers for the runtime tests (no tests here): which backends this host can run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from labkit.runtime import host

REAL = ("native", "runc", "crun", "docker")
ALL = REAL + ("simulated",)


def available(name: str) -> tuple[bool, str]:
    """(can run here, why not) — used to skip, never to silently pass."""
    if name == "simulated":
        return True, ""
    if name == "docker":
        return host.docker_reachable()
    ok, why = host.can_run_real_containers()
    if not ok:
        return False, why
    if name in ("runc", "crun") and not shutil.which(name):
        return False, f"{name} is not installed"
    return True, ""


def backend_param(names: tuple[str, ...] = ALL) -> list:
    out = []
    for n in names:
        ok, why = available(n)
        marks = [] if ok else [pytest.mark.skip(reason=f"{n}: {why}")]
        if n == "docker":
            marks.append(pytest.mark.docker)
        elif n != "simulated":
            marks.append(pytest.mark.root)
        out.append(pytest.param(n, marks=marks, id=n))
    return out


def labkit(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the ``labkit`` command the way a user does (a fresh interpreter)."""
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "labkit.cli", *args], capture_output=True, text=True,
                          env=full, timeout=timeout)
