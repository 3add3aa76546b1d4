"""``labkit run | ps | logs | stop | gc | doctor`` as a user types them."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from support.runtime import REAL, available, backend_param, labkit


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


# --- labkit run --rm on native without click (labkit.cli.fastpath.runfast + labkit.cli.fastpath.foreground) ----------


def test_fast_path_reads_only_the_plain_shapes_and_leaves_the_rest_to_click():
    from labkit.cli.fastpath.runfast import parse

    opts = parse(["run", "--rm", "--runtime=native", "-m", "32m", "--cpus", "0.5", "--pids-limit", "9", "--name",
                  "n", "--hostname", "h", "-e", "A=1", "--env=B=2", "busybox", "--", "sh", "-c", "echo --rm"])
    assert opts is not None
    assert (opts["remove"], opts["runtime"], opts["memory"], opts["cpus"], opts["pids_limit"]) == \
        (True, "native", "32m", "0.5", "9")
    assert opts["env"] == ["A=1", "B=2"] and opts["image"] == "busybox"
    assert opts["command"] == ["sh", "-c", "echo --rm"]
    assert parse(["run", "--rm", "busybox", "true"])["command"] == ["true"]
    for argv in (["ps"], ["run", "--help"], ["run", "-d", "busybox"], ["run", "--rm", "busybox", "-x"],
                 ["run", "busybox", "--rm", "--", "true"], ["run", "-mx", "busybox"], ["run", "--rm", "--name"],
                 ["run", "--rm", "--name", "-x", "busybox"], ["run", "--rm"], ["run", "--bogus", "busybox"]):
        assert parse(argv) is None, argv


def _native():
    if not available("native")[0]:
        pytest.skip(available("native")[1])


INSIDE = ('echo $$; hostname; grep -E "^(Cap|NoNewPrivs|Seccomp)" /proc/self/status; ls /dev /dev/pts; '
          'awk "{print \\$2, \\$3, \\$4}" /proc/mounts | sed "s/lowerdir=.*//"; ip -o link | cut -d" " -f2,3; '
          'sed "s/[0-9a-f]\\{32\\}/ID/" /proc/self/cgroup; ulimit -n; id; pwd; env | sort; '
          'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null; echo err >&2; exit 7')


def test_fast_path_and_click_path_make_the_same_container():
    """``--rm`` after IMAGE is read by click only: the same request both ways, compared from inside."""
    _native()
    fast = labkit("run", "--rm", "--runtime", "native", "--name", "same", "-m", "64m", "-e", "X=1", "busybox",
                  "--", "sh", "-c", INSIDE)
    slow = labkit("run", "--runtime", "native", "--name", "same", "-m", "64m", "-e", "X=1", "busybox", "--rm",
                  "--", "sh", "-c", INSIDE)
    assert fast.returncode == slow.returncode == 7, (fast.stderr, slow.stderr)
    assert fast.stdout == slow.stdout
    assert fast.stderr == slow.stderr == "labkit: ran on native, exit 7\n"
    assert fast.stdout.splitlines()[:2] == ["1", "same"] and "err" in fast.stdout
    assert "lo: <LOOPBACK,UP,LOWER_UP>" in fast.stdout and "NoNewPrivs:\t1" in fast.stdout


def _containers(state: Path) -> list[str]:
    d = state / "runtime" / "native" / "containers"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def _no_trace_of(cid: str, state: Path) -> None:
    assert cid not in _containers(state)
    assert not any(cid in line or str(state) in line for line in Path("/proc/self/mounts").read_text().splitlines())
    assert not any(Path(f"/sys/fs/cgroup/{c}/labkit/{cid}").exists() for c in ("memory", "cpu", "pids", "devices"))


def _start_foreground(state: Path, name: str) -> tuple[subprocess.Popen, str]:
    import sys

    env = dict(os.environ, LABKIT_STATE=str(state))
    proc = subprocess.Popen([sys.executable, "-m", "labkit.cli", "run", "--rm", "--name", name, "busybox", "--",
                             "sh", "-c", "echo ready; trap 'echo bye; exit 0' TERM; while :; do sleep 0.05; done"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        ids = _containers(state)
        if ids and (state / "runtime" / "native" / "containers" / ids[0] / "container.json").exists():
            return proc, ids[0]
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"no container appeared: {proc.communicate()}")


@pytest.mark.root
def test_foreground_container_is_seen_by_ps_logs_and_stop(tmp_path):
    _native()
    env = {"LABKIT_STATE": str(tmp_path)}
    proc, cid = _start_foreground(tmp_path, "fg-ps")
    try:
        ps = labkit("ps", env=env)
        row = [line for line in ps.stdout.splitlines() if line.startswith(cid[:12])]
        assert row and "native" in row[0] and "running" in row[0] and "fg-ps" in row[0], ps.stdout
        deadline = time.monotonic() + 10
        while "ready" not in labkit("logs", cid[:12], env=env).stdout and time.monotonic() < deadline:
            time.sleep(0.1)
        assert labkit("logs", cid[:12], env=env).stdout.startswith("ready")
        stop = labkit("stop", "-t", "5", cid[:12], env=env)
        assert stop.returncode == 0, stop.stderr
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert out.startswith("ready") and "cleanup incomplete" not in err, err
    _no_trace_of(cid, tmp_path)


@pytest.mark.root
def test_ctrl_c_stops_a_foreground_container_and_cleans_up(tmp_path):
    import signal

    _native()
    proc, cid = _start_foreground(tmp_path, "fg-int")
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out == "ready\nbye\n" and "ran on native, exit 0" in err
    _no_trace_of(cid, tmp_path)


@pytest.mark.root
def test_gc_removes_what_a_killed_foreground_run_left(tmp_path):
    """kill -9 the command itself: its container dies with it; gc removes its mounts and records."""
    from labkit.oci import cgroups

    _native()
    env = {"LABKIT_STATE": str(tmp_path)}
    proc, cid = _start_foreground(tmp_path, "fg-kill")
    time.sleep(0.3)
    proc.kill()
    proc.communicate(timeout=20)
    assert cid in _containers(tmp_path)
    # containers only: removing a record unmounts what is below it; "--only mounts" would also take
    # other runs' overlay and nsfs mounts outside this LABKIT_STATE, and so would "--only cgroups"
    res = labkit("gc", "--only", "containers", env=env)
    assert res.returncode == 0, res.stderr
    cgroups.destroy_everywhere(f"/labkit/{cid}")
    _no_trace_of(cid, tmp_path)
