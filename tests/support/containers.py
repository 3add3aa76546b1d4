"""Helpers for the containers tests (images, OCI bundles, cgroups, the native runtime).

Every object a test makes carries the ``lkct-`` prefix; the ``no_leaks`` fixture (tests/conftest.py)
fails a test that leaves a mount, a cgroup, a network namespace or a state directory with that prefix.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from labkit.oci import cgroups

PREFIX = "lkct-"
IS_LINUX_ROOT = sys.platform.startswith("linux") and os.geteuid() == 0

needs_root = pytest.mark.skipif(not IS_LINUX_ROOT, reason="needs root on Linux")


def docker_ok() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def new_id(tag: str = "") -> str:
    return f"{PREFIX}{tag}{uuid.uuid4().hex[:8]}"


def our_mounts(marker: str) -> list[str]:
    with open("/proc/self/mounts") as f:
        return [line.split()[1] for line in f if marker in line.split()[1]]


def our_cgroups() -> list[str]:
    return [p for p in cgroups.leftovers() if p.rsplit("/", 1)[-1].startswith(PREFIX)]


def bundle_id(bundle: Path) -> str:
    return (bundle / ".id").read_text()
