"""Shared fixtures for the containers tests (images, OCI bundles, cgroups, the native runtime).

Every object a test makes carries the ``lkct-`` prefix; the ``no_leaks`` fixture fails a test
that leaves a mount, a cgroup, a network namespace or a state directory with that prefix.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
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


@pytest.fixture(scope="session")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lkct-images")


@pytest.fixture(scope="session")
def store(image_root: Path):  # noqa: ANN201
    from labkit.images import ImageStore

    s = ImageStore(image_root)
    s.ensure("busybox")
    return s


@pytest.fixture()
def state_root(tmp_path: Path) -> Path:
    d = tmp_path / "native-state"
    d.mkdir()
    return d


@pytest.fixture()
def no_leaks(tmp_path: Path, state_root: Path) -> Iterator[None]:
    """Fail the test if it leaves mounts under its tmp dir, lkct- cgroups or container state."""
    before = set(our_cgroups())
    children_before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    mounts = our_mounts(str(tmp_path))
    for m in reversed(mounts):  # clean up so one failure does not cascade, then report
        subprocess.run(["umount", "-l", m], capture_output=True)
    leaked_cg = sorted(set(our_cgroups()) - before)
    for p in leaked_cg:
        try:
            cgroups.destroy_everywhere(p)
        except cgroups.CgroupError:
            pass
    states = [p.name for p in state_root.iterdir()] if state_root.exists() else []
    procs = [p for p in psutil.Process().children(recursive=True)
             if p.pid not in children_before and p.status() != psutil.STATUS_ZOMBIE]
    assert not procs, f"leaked processes: {[(p.pid, p.name()) for p in procs]}"
    assert not mounts, f"leaked mounts: {mounts}"
    assert not leaked_cg, f"leaked cgroups: {leaked_cg}"
    assert not states, f"leaked container state: {states}"


@pytest.fixture()
def make_bundle(store, tmp_path: Path, no_leaks: None) -> Iterator[Callable[..., Path]]:  # noqa: ANN001
    """make_bundle(args, image="busybox", **make_config kwargs) -> bundle dir with a mounted rootfs.

    Depends on ``no_leaks`` so that the leak check runs after the bundles are taken down.
    """
    from labkit.oci import spec
    from labkit.oci.bundle import Bundle

    made = []

    def make(args: list[str], image: str = "busybox", cid: str | None = None, **kw) -> Path:  # noqa: ANN003
        cid = cid or new_id()
        kw.setdefault("hostname", cid)
        kw.setdefault("cgroups_path", f"/labkit/{cid}")
        b = Bundle.create(tmp_path / f"bundle-{cid}", spec.make_config(args, **kw))
        r = store.prepare_rootfs(image, b.rootfs)
        made.append((b, r))
        b.path.joinpath(".id").write_text(cid)
        return b.path

    yield make
    for b, r in reversed(made):
        r.unmount()
        b.remove()


def bundle_id(bundle: Path) -> str:
    return (bundle / ".id").read_text()
