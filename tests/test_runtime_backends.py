"""Every backend behind the same CRI-shaped interface: what a user of each one would notice."""

from __future__ import annotations

import time

import pytest
from support.runtime import REAL, available, backend_param

import labkit.runtime as rt
from labkit.errors import NotFound, Unsupported
from labkit.oci.resources import Resources
from labkit.runtime.base import ContainerConfig, ContainerState, PodSandboxConfig


@pytest.mark.parametrize("backend", backend_param())
def test_pid_one_and_own_hostname_or_an_honest_simulation(backend):
    res = rt.run("busybox", "echo $$; hostname", runtime=backend, hostname="box-t1")
    assert res.runtime == backend
    assert res.exit_code == 0 and res.reason == "Completed"
    assert res.cleaned_up
    lines = res.stdout.split()
    if backend == "simulated":
        assert lines[0] != "1"  # a plain host process: its real PID
        assert "no namespaces" in res.notice
    else:
        assert lines == ["1", "box-t1"]
        assert res.notice == ""


@pytest.mark.parametrize("backend", backend_param())
def test_cri_lifecycle_create_start_exec_stop_remove(backend):
    r = rt.get(backend)
    sconf = PodSandboxConfig(name="t-life", hostname="t-life")
    sid = r.run_pod_sandbox(sconf)
    try:
        cmd = ["sh", "-c", "echo hello; trap 'echo bye; exit 7' TERM; while :; do sleep 0.05; done"]
        cid = r.create_container(sid, ContainerConfig(name="app", image="busybox", command=cmd), sconf)
        assert r.container_status(cid).state == ContainerState.CREATED
        r.start_container(cid)
        st = r.container_status(cid)
        assert st.state == ContainerState.RUNNING and st.pid
        if backend != "simulated":
            assert st.image_ref.startswith("sha256:")
            ex = r.exec_sync(cid, ["hostname"])
            assert ex.exit_code == 0 and ex.stdout.strip() == b"t-life"
            stats = r.container_stats(cid)
            assert stats.memory_bytes and stats.memory_bytes > 0
        assert [c.id for c in r.list_containers(sid)] == [cid]
        deadline = time.monotonic() + 10
        while b"hello" not in r.logs(cid) and time.monotonic() < deadline:  # trap set before we signal
            time.sleep(0.01)
        r.stop_container(cid, timeout=5)
        st = r.container_status(cid)
        assert st.state == ContainerState.EXITED
        assert st.exit_code == 7 and st.reason == "Error"
        assert b"hello" in r.logs(cid) and b"bye" in r.logs(cid)
        r.remove_container(cid)
        assert cid not in [c.id for c in r.list_containers()]
        with pytest.raises(NotFound):
            r.container_status(cid)
    finally:
        r.remove_pod_sandbox(sid)
    with pytest.raises(NotFound):
        r.pod_sandbox_status(sid)
    r.close()


@pytest.mark.parametrize("backend", backend_param(REAL))
def test_containers_of_one_pod_share_network_and_hostname_not_pids(backend):
    r = rt.get(backend)
    sconf = PodSandboxConfig(name="t-pod", hostname="t-pod")
    sid = r.run_pod_sandbox(sconf)
    try:
        # both alive at once: the kernel reuses a dead namespace's inode number
        show = ["sh", "-c", "readlink /proc/self/ns/net; readlink /proc/self/ns/pid; hostname; echo $$; sleep 1"]
        ids = []
        for n in ("a", "b"):
            cid = r.create_container(sid, ContainerConfig(name=n, image="busybox", command=show), sconf)
            r.start_container(cid)
            ids.append(cid)
        out = []
        for cid in ids:
            r.wait(cid, 20)
            out.append(r.logs(cid).decode().split())
        (net_a, pid_a, host_a, one_a), (net_b, pid_b, host_b, one_b) = out
        assert net_a == net_b and host_a == host_b == "t-pod"
        assert pid_a != pid_b and one_a == one_b == "1"
        if backend != "docker":
            assert r.pod_sandbox_status(sid).netns_path.startswith("/var/run/netns/labkit-")
    finally:
        r.remove_pod_sandbox(sid)
        r.close()


@pytest.mark.parametrize("backend", backend_param(REAL))
def test_memory_limit_gets_the_container_oom_killed(backend):
    res = rt.run("busybox", "head -c 100000000 /dev/zero | tail > /dev/null", runtime=backend, memory="16m")
    assert res.exit_code == 137
    assert res.reason == "OOMKilled"
    assert res.cleaned_up


def test_one_image_one_digest_on_every_backend():
    digests = {}
    for name in ("native", "runc", "crun", "docker"):
        if available(name)[0]:
            digests[name] = rt.run("busybox", "true", runtime=name).image_digest
    if len(digests) < 2:
        pytest.skip("fewer than two real backends on this host")
    assert len(set(digests.values())) == 1, digests


def test_unknown_runtime_lists_the_choices():
    with pytest.raises(rt.UnknownRuntime, match="native, runc, crun, oci, docker, simulated"):
        rt.get("podman")


def test_default_says_which_backend_and_why():
    r = rt.default()
    assert r.reason.startswith(r.name + ":")
    r.close()


def test_not_linux_falls_back_to_simulated_and_says_so(monkeypatch):
    import platform

    from labkit.runtime import host

    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    monkeypatch.setattr(host, "docker_reachable", lambda timeout=2.0: (False, "no Docker socket"))
    name, reason = rt.choose_default()
    assert name == "simulated" and "not Linux" in reason
    with pytest.raises(Unsupported, match="not Linux"):
        rt.get("native")
    with pytest.raises(Unsupported, match="not Linux"):
        rt.get("runc")


def test_not_root_falls_back_and_says_so(monkeypatch):
    monkeypatch.setenv("LABKIT_PRETEND_NOT_ROOT", "1")
    with pytest.raises(Unsupported, match="not root"):
        rt.get("native")
    from labkit.runtime import host

    monkeypatch.setattr(host, "docker_reachable", lambda timeout=2.0: (False, "no Docker socket"))
    res = rt.run("busybox", "echo hi")
    assert res.runtime == "simulated" and "not root" in res.runtime_reason
    assert res.stdout == "hi\n"


def test_hollow_runtime_keeps_thousands_of_containers_without_running_anything():
    from labkit.runtime.simulated import HollowRuntime

    h = HollowRuntime()
    sconf = PodSandboxConfig(name="p")
    ids = []
    for i in range(2000):
        sid = h.run_pod_sandbox(sconf)
        cid = h.create_container(sid, ContainerConfig(name=f"c{i}", image="busybox"), sconf)
        h.start_container(cid)
        ids.append(cid)
    assert sum(1 for c in h.list_containers() if c.state == ContainerState.RUNNING) == 2000
    assert "nothing runs" in h.version().runtime_version
    h.stop_container(ids[0])
    assert h.container_status(ids[0]).state == ContainerState.EXITED


@pytest.mark.parametrize("backend", backend_param(("native", "runc")))
def test_cpu_quota_reaches_the_cgroup(backend):
    r = rt.get(backend)
    sconf = PodSandboxConfig(name="t-cpu")
    sid = r.run_pod_sandbox(sconf)
    try:
        cfg = ContainerConfig(name="c", image="busybox", command=["sleep", "5"],
                              resources=Resources.from_cpus(0.5, pids_limit=20))
        cid = r.create_container(sid, cfg, sconf)
        r.start_container(cid)
        path = f"/sys/fs/cgroup/cpu/labkit/{cid}/cpu.cfs_quota_us"
        v2 = f"/sys/fs/cgroup/labkit/{cid}/cpu.max"
        import os

        text = open(path).read() if os.path.exists(path) else open(v2).read()
        assert text.split()[0] == "50000"
    finally:
        r.remove_pod_sandbox(sid)
