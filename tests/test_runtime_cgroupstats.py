"""The counters behind ``container_stats`` and ``OOMKilled``, on cgroup v1 and v2 (fake trees)."""

from __future__ import annotations

from labkit.oci import cgroups


def test_v2_counters_come_from_one_folder(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    g = tmp_path / "labkit" / "c1"
    g.mkdir(parents=True)
    (g / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
    (g / "memory.current").write_text("1048576\n")
    (g / "cpu.stat").write_text("usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n")
    (g / "pids.current").write_text("3\n")
    assert cgroups.oom_kills("/labkit/c1", root=tmp_path) == 1
    assert cgroups.usage("/labkit/c1", root=tmp_path) == (1048576, 2_500_000, 3)


def test_v1_counters_come_from_one_folder_per_controller(tmp_path):
    for ctrl in ("memory", "cpuacct", "pids"):
        (tmp_path / ctrl / "labkit" / "c2").mkdir(parents=True)
    mem = tmp_path / "memory" / "labkit" / "c2"
    (mem / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    (mem / "memory.usage_in_bytes").write_text("4096\n")
    (mem / "memory.failcnt").write_text("17\n")
    (tmp_path / "cpuacct" / "labkit" / "c2" / "cpuacct.usage").write_text("123456\n")
    (tmp_path / "pids" / "labkit" / "c2" / "pids.current").write_text("1\n")
    assert cgroups.oom_kills("/labkit/c2", root=tmp_path) == 2
    assert cgroups.memory_failcnt("/labkit/c2", root=tmp_path) == 17
    assert cgroups.usage("/labkit/c2", root=tmp_path) == (4096, 123456, 1)


def test_a_missing_cgroup_reads_as_unknown_not_an_error(tmp_path):
    assert cgroups.oom_kills("/labkit/gone", root=tmp_path) == 0
    assert cgroups.usage("/labkit/gone", root=tmp_path) == (None, None, None)
