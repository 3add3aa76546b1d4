"""``labkit run | ps | logs | stop | gc | doctor`` as a user types them."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from test_runtime_helpers import REAL, available, backend_param, labkit


@pytest.mark.parametrize("backend", backend_param(REAL))
def test_run_prints_pid_one_and_the_container_hostname(backend):
    out = labkit("run", "--rm", "--runtime", backend, "--name", f"cli-{backend}", "busybox", "--",
                 "sh", "-c", "echo $$; hostname")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", f"cli-{backend}"]
    assert f"ran on {backend}" in out.stderr


def test_run_oci_picks_an_installed_oci_runtime():
    if not (available("runc")[0] or available("crun")[0]):
        pytest.skip("no OCI runtime here")
    out = labkit("run", "--rm", "--runtime", "oci", "busybox", "--", "sh", "-c", "echo $$")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
    assert "ran on runc" in out.stderr or "ran on crun" in out.stderr


def test_run_simulated_says_it_is_not_isolated():
    out = labkit("run", "--rm", "--runtime", "simulated", "busybox", "--", "sh", "-c", "echo $$")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() != "1"
    assert "no namespaces" in out.stderr


def test_exit_code_and_oom_are_passed_on():
    if not available("native")[0]:
        pytest.skip(available("native")[1])
    out = labkit("run", "--rm", "--runtime", "native", "busybox", "--", "sh", "-c", "exit 3")
    assert out.returncode == 3
    out = labkit("run", "--rm", "--runtime", "native", "--memory", "16m", "busybox", "--",
                 "sh", "-c", "head -c 100000000 /dev/zero | tail >/dev/null")
    assert out.returncode == 137
    assert "OOMKilled" in out.stderr


@pytest.mark.parametrize("backend", backend_param(("native", "runc", "docker", "simulated")))
def test_detached_container_shows_in_ps_logs_and_stops(backend):
    name = f"cli-d-{backend}-{os.getpid()}"
    out = labkit("run", "-d", "--rm", "--runtime", backend, "--name", name, "busybox", "--",
                 "sh", "-c", "echo ready; trap 'exit 0' TERM; while :; do sleep 0.05; done")
    assert out.returncode == 0, out.stderr
    cid = out.stdout.strip()
    assert len(cid) >= 32
    try:
        ps = labkit("ps")
        row = [line for line in ps.stdout.splitlines() if line.startswith(cid[:12])]
        assert row and backend in row[0] and "running" in row[0] and name in row[0]
        deadline = time.monotonic() + 10
        logs = labkit("logs", cid[:12])
        while "ready" not in logs.stdout and time.monotonic() < deadline:
            time.sleep(0.1)
            logs = labkit("logs", cid[:12])
        assert logs.stdout.strip() == "ready"
    finally:
        stop = labkit("stop", "-t", "5", cid[:12])
    assert stop.returncode == 0, stop.stderr
    assert "removed" in stop.stdout
    assert cid[:12] not in labkit("ps", "-a").stdout


def test_doctor_json_names_the_default_and_why():
    import json

    out = labkit("doctor", "--json")
    data = json.loads(out.stdout)
    assert data["default_runtime"] in ("native", "runc", "crun", "docker", "simulated")
    assert data["reason"].startswith(data["default_runtime"] + ":")
    assert {c["name"] for c in data["checks"]} >= {"linux", "root", "runc", "crun", "docker"}


def test_doctor_reports_host_and_choice():
    out = labkit("doctor")
    assert out.returncode == 0, out.stderr
    for word in ("cgroups", "namespaces", "overlayfs", "runc", "crun", "docker", "cni plugins", "etcd",
                 "kubectl", "graphviz dot", "default runtime:", "why:"):
        assert word in out.stdout


@pytest.mark.root
def test_gc_removes_what_a_killed_run_left(tmp_path):
    """kill -9 the shim and the container, then gc (scoped to a private state dir) cleans up."""
    if not available("runc")[0]:
        pytest.skip(available("runc")[1])
    env = {"LABKIT_STATE": str(tmp_path)}
    out = labkit("run", "-d", "--runtime", "runc", "busybox", "--", "sleep", "60", env=env)
    assert out.returncode == 0, out.stderr
    cid = out.stdout.strip()
    cdir = tmp_path / "runtime" / "runc" / "containers" / cid
    pid = int((cdir / "pid").read_text())
    shim = int((cdir / "shim.pid").read_text())
    for p in (shim, pid):
        os.kill(p, 9)
    sandboxes = list((tmp_path / "runtime" / "runc" / "sandboxes").iterdir())
    netns = Path(f"/var/run/netns/labkit-{sandboxes[0].name}")
    assert netns.exists()
    dry = labkit("gc", "--dry-run", "--only", "containers", "--only", "mounts", env=env)
    assert cid in dry.stdout and str(cdir / "bundle" / "rootfs") in dry.stdout
    res = labkit("gc", "--only", "containers", "--only", "mounts", env=env)
    assert res.returncode == 0, res.stderr
    assert not cdir.exists() and not netns.exists()
    assert not Path(f"/sys/fs/cgroup/memory/labkit/{cid}").exists()
    assert not any(str(tmp_path) in line for line in Path("/proc/self/mounts").read_text().splitlines())


@pytest.mark.root
def test_gc_dry_run_finds_comment_tagged_iptables_rules():
    import shutil
    import subprocess

    if not shutil.which("iptables"):
        pytest.skip("no iptables")
    chain = f"LABKIT-T{os.getpid() % 100000}"
    subprocess.run(["iptables", "-w", "-N", chain], check=True)
    try:
        subprocess.run(["iptables", "-w", "-A", chain, "-s", "127.0.0.9/32", "-m", "comment", "--comment",
                        "labkit test", "-j", "RETURN"], check=True)
        out = labkit("gc", "--dry-run", "--only", "iptables")
        assert out.returncode == 0
        assert f"-N {chain}" in out.stdout and "labkit test" in out.stdout
    finally:
        subprocess.run(["iptables", "-w", "-F", chain])
        subprocess.run(["iptables", "-w", "-X", chain])
