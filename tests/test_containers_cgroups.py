"""cgroups: v1 on this host, v2 on a fake tree, and the v2 features the hybrid mount offers."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from support.containers import PREFIX, needs_root, new_id

from labkit.oci import cgroups

RESOURCES = {"memory": {"limit": 64 << 20, "swap": 64 << 20}, "cpu": {"quota": 50_000, "period": 100_000},
             "pids": {"limit": 32}}


def test_v2_limits_land_in_the_v2_files(tmp_path):
    lay = cgroups.fake_v2_layout(tmp_path / "cg")
    cg = cgroups.Cgroup(f"/labkit/{PREFIX}v2", lay).create()
    d = tmp_path / "cg" / "labkit" / f"{PREFIX}v2"
    cg.set_resources(RESOURCES)
    assert (d / "memory.max").read_text() == str(64 << 20)
    assert (d / "memory.swap.max").read_text() == "0"
    assert (d / "cpu.max").read_text() == "50000 100000"
    assert (d / "pids.max").read_text() == "32"
    # controllers are enabled on the way down, as the kernel requires
    assert {"memory", "cpu", "pids"} <= set((tmp_path / "cg" / "cgroup.subtree_control").read_text().split())
    assert cg.join_files() == [d / "cgroup.procs"]
    assert "v2" in lay.describe()


def test_v2_oom_is_read_from_memory_events(tmp_path):
    lay = cgroups.fake_v2_layout(tmp_path / "cg")
    cg = cgroups.Cgroup(f"/labkit/{PREFIX}oom", lay).create()
    assert cg.oom_counters() == {"max": 0, "oom": 0, "oom_kill": 0} and not cg.oom_killed()
    (cg.v2 / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n")
    assert cg.oom_killed() and cg.oom_counters()["max"] == 12
    (cg.v2 / "memory.current").write_text("4096\n")
    (cg.v2 / "cpu.stat").write_text("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
    (cg.v2 / "pids.current").write_text("3\n")
    assert cg.stats() == {"memory_bytes": 4096, "cpu_usage_ns": 1_500_000, "pids": 3}
    cg.freeze()
    assert (cg.v2 / "cgroup.freeze").read_text() == "1"
    cg.thaw()
    cg.destroy()
    assert not cg.v2.exists()


def test_bad_cgroup_paths_are_refused(tmp_path):
    lay = cgroups.fake_v2_layout(tmp_path / "cg")
    for bad in ("", "/", "/labkit/../etc"):
        with pytest.raises(cgroups.CgroupError, match="bad cgroup path"):
            cgroups.Cgroup(bad, lay)


def test_this_host_layout_is_detected():
    lay = cgroups.detect_layout()
    assert lay.mode in ("v1", "v2", "hybrid", "none")
    if os.path.isdir("/sys/fs/cgroup/memory"):
        assert lay.v1.get("memory") is not None and "v1" in lay.describe()


@needs_root
def test_v1_limits_and_counters_on_this_host():
    lay = cgroups.detect_layout()
    if "memory" not in lay.v1:
        pytest.skip("this host has no cgroup v1 memory hierarchy")
    cg = cgroups.Cgroup(f"/labkit/{new_id('v1')}", lay).create()
    try:
        cg.set_resources(RESOURCES)
        assert cg.memory_limit() == 64 << 20
        assert (cg.v1["cpu"] / "cpu.cfs_quota_us").read_text().strip() == "50000"
        assert (cg.v1["pids"] / "pids.max").read_text().strip() == "32"
        counters = cg.oom_counters()
        assert counters["failcnt"] == 0 and counters["oom_kill"] == 0
        p = subprocess.Popen(["sleep", "30"])
        try:
            cg.add(p.pid)
            assert p.pid in cg.pids()
            assert cg.stats()["pids"] == 1
        finally:
            cg.kill()
            p.wait(timeout=10)
        assert p.returncode == -9
    finally:
        cg.destroy()
    assert not cg.exists()


@needs_root
def test_v2_kill_freeze_and_events_on_the_hybrid_mount():
    lay = cgroups.detect_layout()
    if lay.v2 is None or not lay.v1:
        pytest.skip("needs the hybrid layout's v2 mount")
    cg = cgroups.Cgroup(f"/labkit/{new_id('v2')}", lay, include_v2=True).create()
    p = subprocess.Popen(["sleep", "30"])
    try:
        cg.add(p.pid)
        assert cg.events()["populated"] == 1
        cg.freeze()
        for _ in range(200):
            if cg.events().get("frozen") == 1:
                break
            time.sleep(0.01)
        assert cg.events()["frozen"] == 1
        cg.thaw()
        cg.kill()  # cgroup.kill: the kernel kills every process in the group at once
        p.wait(timeout=10)
        assert p.returncode == -9
        for _ in range(200):
            if cg.events()["populated"] == 0:
                break
            time.sleep(0.01)
        assert cg.events()["populated"] == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        cg.destroy()
    assert not cg.exists()
