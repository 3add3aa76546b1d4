"""``labkit gc`` removes only what belongs to the state folder it runs for.

Tests, labs and other engineers' runs use their own ``LABKIT_STATE`` on one host at the same
time; a gc for one of them must never unmount another's live container.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.runtime import available, labkit

from labkit.runtime import gc, mounts


def _fake_mounts(monkeypatch: pytest.MonkeyPatch, table: list[tuple[str, str]]) -> None:
    monkeypatch.setattr(mounts, "all_mounts", lambda: list(table))


def test_a_private_state_takes_only_its_own_mounts(tmp_path, monkeypatch):
    mine, other = tmp_path / "labkit-a", tmp_path / "labkit-b"
    (mine / "runtime" / "runc" / "sandboxes" / "s1").mkdir(parents=True)
    monkeypatch.setenv("LABKIT_STATE", str(mine))
    _fake_mounts(monkeypatch, [
        (f"{mine}/runtime/native/containers/c1/bundle/rootfs", "overlay"),
        (f"{mine}/runtime/runc/sandboxes/s1/ns/uts", "nsfs"),
        ("/run/netns/labkit-s1", "nsfs"),  # this state's pod network
        (f"{other}/runtime/native/containers/c2/bundle/rootfs", "overlay"),
        ("/run/labkit/runtime/native/containers/c3/bundle/rootfs", "overlay"),
        ("/run/netns/labkit-s9", "nsfs"),  # someone else's pod network
        ("/var/lib/labkit/lab/rootfs", "overlay"),
    ])
    found = sorted(x.what for x in gc.find_leaks(("mounts",)))
    assert found == sorted([f"{mine}/runtime/native/containers/c1/bundle/rootfs",
                            f"{mine}/runtime/runc/sandboxes/s1/ns/uts", "/run/netns/labkit-s1"])


def test_the_default_state_sweeps_labkit_mounts_but_not_other_states(tmp_path, monkeypatch):
    other = tmp_path / "labkit-b"
    monkeypatch.setenv("LABKIT_STATE", gc.DEFAULT_STATE)
    _fake_mounts(monkeypatch, [
        ("/run/labkit/runtime/native/containers/c3/bundle/rootfs", "overlay"),
        ("/run/netns/labkit-s9", "nsfs"),
        ("/var/lib/labkit/lab/rootfs", "overlay"),
        (f"{other}/runtime/native/containers/c2/bundle/rootfs", "overlay"),
        ("/var/lib/docker/overlay2/x/merged", "overlay"),
    ])
    found = sorted(x.what for x in gc.find_leaks(("mounts",)))
    assert found == ["/run/labkit/runtime/native/containers/c3/bundle/rootfs", "/run/netns/labkit-s9",
                     "/var/lib/labkit/lab/rootfs"]


def _mounted(folder: Path) -> list[str]:
    return mounts.mounted_under(folder)


@pytest.mark.root
def test_gc_for_one_state_leaves_another_states_running_container_alone(tmp_path):
    if not available("native")[0]:
        pytest.skip(available("native")[1])
    a, b = tmp_path / "labkit-a", tmp_path / "labkit-b"  # "/labkit" in both: the old sweep took b's
    a.mkdir()
    env_a, env_b = {"LABKIT_STATE": str(a)}, {"LABKIT_STATE": str(b)}
    out = labkit("run", "-d", "--runtime", "native", "--name", f"gcscope-{os.getpid()}", "busybox", "--",
                 "sh", "-c", "echo up; trap 'exit 0' TERM; while :; do sleep 0.05; done", env=env_b)
    assert out.returncode == 0, out.stderr
    cid = out.stdout.strip()
    try:
        before = _mounted(b)
        assert any(m.endswith("/rootfs") for m in before), before
        sandboxes = list((b / "runtime" / "native" / "sandboxes").iterdir())
        netns = f"/run/netns/labkit-{sandboxes[0].name}"
        assert os.path.exists(netns)
        dry = labkit("gc", "--dry-run", "--only", "mounts", "--only", "containers", env=env_a)
        assert str(b) not in dry.stdout and netns not in dry.stdout
        res = labkit("gc", "--only", "mounts", "--only", "containers", env=env_a)
        assert res.returncode == 0, res.stderr
        assert _mounted(b) == before and os.path.exists(netns)
        ps = labkit("ps", env=env_b)
        assert any(line.startswith(cid[:12]) and "running" in line for line in ps.stdout.splitlines()), ps.stdout
    finally:
        labkit("stop", cid, env=env_b)
        labkit("gc", "--only", "containers", "--only", "mounts", env=env_b)
    assert _mounted(b) == []
