"""labkit's native runtime: namespaces, pivot_root, /proc, /dev, caps, limits, errors, no leaks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.containers import IS_LINUX_ROOT, bundle_id, new_id

from labkit.oci import capabilities, cgroups, spec
from labkit.oci.native import (
    ExecutableNotFound,
    MemoryTooSmall,
    NativeContainer,
    NativeError,
)
from labkit.oci.resources import Resources

pytestmark = pytest.mark.skipif(not IS_LINUX_ROOT, reason="the native runtime needs root on Linux")
REPO = Path(__file__).resolve().parents[1]


def run(bundle: Path, root: Path, **kw) -> tuple[int, str, str, NativeContainer]:  # noqa: ANN003
    """Run a bundle to completion; return (exit code, stdout, stderr, container)."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    c = NativeContainer(bundle, bundle_id(bundle), root=root, stdout=out_w, stderr=err_w, **kw)
    try:
        c.create(start_now=True)
    finally:
        os.close(out_w)
        os.close(err_w)
    with os.fdopen(out_r) as o, os.fdopen(err_r) as e:
        out, err = o.read(), e.read()
    st = c.wait()
    return st.code, out, err, c


def test_pid_1_inside_another_pid_outside(make_bundle, state_root):
    b = make_bundle(["sh", "-c", "echo $$; hostname; exit 5"], hostname="box1")
    code, out, _err, c = run(b, state_root)
    try:
        assert code == 5
        assert out.split() == ["1", "box1"]
        assert c.pid and c.pid != 1
    finally:
        c.delete()


def test_namespaces_differ_from_the_host(make_bundle, state_root):
    b = make_bundle(["sleep", "30"])
    c = NativeContainer(b, bundle_id(b), root=state_root)
    c.create()
    try:
        assert c.state()["status"] == "created"
        c.start()
        assert c.state()["status"] == "running"
        for ns in ("pid", "mnt", "uts", "ipc", "net"):
            inside = os.readlink(f"/proc/{c.pid}/ns/{ns}")
            assert inside != os.readlink(f"/proc/self/ns/{ns}"), ns
        assert os.readlink(f"/proc/{c.pid}/ns/user") == os.readlink("/proc/self/ns/user")
        res = c.exec(["ps", "-o", "pid,comm"])
        assert res.exit_code == 0
        rows = [line.split() for line in res.stdout.decode().strip().split("\n")[1:]]
        assert rows[0] == ["1", "sleep"] and len(rows) == 2  # only the container's own processes
    finally:
        c.delete(force=True)
    assert c.wait().code == 137


def test_pivot_root_hides_the_host_and_mounts_proc_and_dev(make_bundle, state_root):
    script = ("test -e /work && printf 'seen-%s\\n' work; cat /proc/self/mountinfo | awk '$5==\"/\"{print $9}';"
              "ls /dev; cat /proc/1/cmdline | tr '\\0' ' '; echo; echo x > /dev/null && echo devnull-ok")
    b = make_bundle(["sh", "-c", script])
    code, out, err, c = run(b, state_root)
    c.delete()
    assert code == 0, err
    assert "seen-work" not in out
    lines = out.split("\n")
    assert lines[0] == "overlay"  # "/" is the image's overlay, not the host's root
    for dev in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm"):
        assert dev in out.split(), dev
    assert "sh -c" in out and "devnull-ok" in out


def test_the_chroot_escape_works_on_chroot_and_fails_after_pivot_root(store, make_bundle, state_root,
                                                                       tmp_path):
    from labkit.oci import escape

    secret = tmp_path / "host-secret.txt"
    secret.write_text("s3cret\n")
    process = spec.make_config(["true"])["process"]  # the default container capabilities
    jail = store.prepare_rootfs("busybox", tmp_path / "jail", overlay=False)
    try:
        out = escape.attempt(escape.enter_chroot(str(jail.path), process), str(secret))
    finally:
        jail.unmount()
    assert out.escaped and "s3cret" in out.detail and "CAP_SYS_CHROOT" in out.capabilities
    b = make_bundle(["sleep", "30"])
    c = NativeContainer(b, bundle_id(b), root=state_root)
    c.create(start_now=True)
    try:
        out = escape.attempt(escape.enter_container(c.pid, process), str(secret))
    finally:
        c.delete(force=True)
    assert not out.escaped and "No such file" in out.detail
    assert "lk-escape" in out.root_listing and "work" not in out.root_listing


def test_capabilities_are_dropped_and_no_new_privs_is_set(make_bundle, state_root):
    b = make_bundle(["sh", "-c", "grep -E '^(CapBnd|CapEff|NoNewPrivs)' /proc/self/status; hostname x 2>&1"])
    code, out, _err, c = run(b, state_root)
    c.delete()
    fields = dict(line.split(":\t") for line in out.strip().split("\n") if ":\t" in line)
    expect = capabilities.mask(capabilities.DEFAULT_CAPABILITIES)
    assert int(fields["CapBnd"], 16) == expect and int(fields["CapEff"], 16) == expect
    assert "CAP_SYS_ADMIN" not in capabilities.names(int(fields["CapEff"], 16))
    assert fields["NoNewPrivs"].strip() == "1"
    assert "Operation not permitted" in out  # sethostname needs CAP_SYS_ADMIN, which is gone


def test_memory_limit_gets_the_process_oom_killed_with_counters(make_bundle, state_root):
    b = make_bundle(["dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1"],
                    resources=Resources(memory_bytes=32 << 20))
    c = NativeContainer(b, bundle_id(b), root=state_root, stderr=os.open(os.devnull, os.O_WRONLY))
    c.create(start_now=True)
    try:
        st = c.wait()
        counters = c.cgroup().oom_counters()
    finally:
        c.delete()
    assert st.code == 137 and st.oom_killed and st.reason == "OOMKilled"
    assert counters["oom_kill"] >= 1
    if "failcnt" in counters:  # v1: how many times the limit was hit
        assert counters["failcnt"] > 0


def test_enough_memory_completes(make_bundle, state_root):
    b = make_bundle(["dd", "if=/dev/zero", "of=/dev/null", "bs=8M", "count=1"],
                    resources=Resources(memory_bytes=64 << 20))
    code, _out, _err, c = run(b, state_root)
    c.delete()
    assert code == 0


def test_cpu_quota_throttles_a_busy_loop(make_bundle, state_root):
    b = make_bundle(["sh", "-c", "i=0; while [ $i -lt 60000 ]; do i=$((i+1)); done"],
                    resources=Resources.from_cpus(0.1))
    c = NativeContainer(b, bundle_id(b), root=state_root)
    c.create(start_now=True)
    try:
        c.wait()
        cg = c.cgroup()
        d, version = cg._ctrl_dir("cpu")
        stat = dict(line.split() for line in (d / "cpu.stat").read_text().strip().split("\n"))
        quota = (d / ("cpu.cfs_quota_us" if version == 1 else "cpu.max")).read_text().split()[0]
    finally:
        c.delete()
    assert quota == "10000"
    assert int(stat["nr_throttled"]) > 0  # the kernel stopped it when its 10 ms per 100 ms ran out


def test_pids_limit_stops_a_fork_loop(make_bundle, state_root):
    b = make_bundle(["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & done; echo done"],
                    resources=Resources(pids_limit=6))
    code, out, err, c = run(b, state_root)
    c.delete()
    assert "can't fork" in err  # the kernel refused the 7th process: pids.max is 6


def test_missing_command_is_a_clear_error_and_leaves_nothing(make_bundle, state_root):
    b = make_bundle(["no-such-program", "x"])
    c = NativeContainer(b, bundle_id(b), root=state_root)
    with pytest.raises(ExecutableNotFound, match="executable not found in image: 'no-such-program'"):
        c.create()
    assert not (state_root / bundle_id(b)).exists()


def test_memory_limit_too_small_to_start(make_bundle, state_root):
    b = make_bundle(["true"])
    cfg = json.loads((b / "config.json").read_text())
    cfg["linux"]["resources"]["memory"] = {"limit": 1 << 20}
    (b / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(MemoryTooSmall, match="too small to start"):
        NativeContainer(b, bundle_id(b), root=state_root).create()


def test_join_an_existing_network_namespace(store, tmp_path, state_root, no_leaks):
    from labkit.oci.bundle import Bundle

    name = new_id("ns")
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        ns_path = f"/var/run/netns/{name}"
        cid = new_id()
        b = Bundle.create(tmp_path / "b", spec.make_config(["sleep", "30"], netns_path=ns_path,
                                                           cgroups_path=f"/labkit/{cid}"))
        with store.prepare_rootfs("busybox", b.rootfs):
            c = NativeContainer(b.path, cid, root=state_root)
            c.create(start_now=True)
            try:
                assert os.stat(f"/proc/{c.pid}/ns/net").st_ino == os.stat(ns_path).st_ino
            finally:
                c.delete(force=True)
        b.remove()
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def test_delete_refuses_a_running_container_without_force(make_bundle, state_root):
    b = make_bundle(["sleep", "30"])
    c = NativeContainer(b, bundle_id(b), root=state_root)
    c.create(start_now=True)
    try:
        with pytest.raises(NativeError, match="is running; stop it first"):
            c.delete()
        c.kill(15)  # PID 1 without a TERM handler ignores it: still running
        with pytest.raises(NativeError, match="already exists"):
            NativeContainer(b, bundle_id(b), root=state_root).create()
    finally:
        c.delete(force=True)
    assert cgroups.Cgroup(f"/labkit/{bundle_id(b)}").exists() is False


def _cli(*args: str, root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labkit.oci.native", "--root", str(root), *args],
                          capture_output=True, text=True, timeout=60, cwd=REPO, stdin=subprocess.DEVNULL)


def test_runc_shaped_cli(make_bundle, state_root, tmp_path):
    b = make_bundle(["sh", "-c", "echo started; sleep 30"])
    cid = bundle_id(b)
    log = tmp_path / "c.log"
    created = subprocess.run([sys.executable, "-m", "labkit.oci.native", "--root", str(state_root), "--log",
                              str(log), "create", cid, "--bundle", str(b)], timeout=60, cwd=REPO,
                             stdin=subprocess.DEVNULL, capture_output=True, text=True)
    assert created.returncode == 0, created.stderr
    try:
        assert json.loads(_cli("state", cid, root=state_root).stdout)["status"] == "created"
        assert _cli("start", cid, root=state_root).returncode == 0
        st = json.loads(_cli("state", cid, root=state_root).stdout)
        assert st["status"] == "running" and st["pid"] > 1
        ex = _cli("exec", cid, "--", "hostname", root=state_root)
        assert ex.returncode == 0 and ex.stdout.strip() == cid
        refused = _cli("delete", cid, root=state_root)
        assert refused.returncode == 1 and "stop it first" in refused.stderr and "Traceback" not in refused.stderr
        assert _cli("kill", cid, "KILL", root=state_root).returncode == 0
        for _ in range(100):
            st = json.loads(_cli("state", cid, root=state_root).stdout)
            if st["status"] == "stopped":
                break
        assert st["status"] == "stopped" and st["exitCode"] == 137
    finally:
        _cli("delete", "--force", cid, root=state_root)
    assert "started" in log.read_text()
    missing = _cli("state", "nope", root=state_root)
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_cli_run_exits_with_the_containers_status(make_bundle, state_root):
    b = make_bundle(["sh", "-c", "echo out; exit 9"])
    out = _cli("run", bundle_id(b), "--bundle", str(b), root=state_root)
    assert out.returncode == 9 and out.stdout == "out\n"


def test_not_root_gets_a_plain_message(make_bundle, state_root):
    # nobody may not read this clone: a copy
    from support.another_user import as_user, interpreter, labkit_env

    b = make_bundle(["true"])
    code = ("import sys; from labkit.oci.native import NativeContainer, NativeError\n"
            "try:\n    NativeContainer(sys.argv[1], 'x', root='/tmp').create()\n"
            "except NativeError as e:\n    print(e)\n")
    env = dict(labkit_env(), LABKIT_STATE="/tmp")
    out = subprocess.run([*as_user(), interpreter(), "-c", code, str(b)], capture_output=True, text=True,
                         cwd="/", timeout=60, env=env)
    assert "needs root" in out.stdout and "simulated" in out.stdout, out.stderr


def test_user_namespace_makes_root_inside_an_ordinary_uid_outside(store, state_root, no_leaks):
    import shutil
    import tempfile

    from labkit.oci.bundle import Bundle

    work = Path(tempfile.mkdtemp(prefix="lkct-userns-"))
    os.chmod(work, 0o755)  # the mapped root (host uid 100000) must be able to walk to the rootfs
    cid = new_id("u")
    try:
        cfg = spec.make_config(["sh", "-c", "id -u; cat /proc/self/uid_map; touch /y 2>&1; sleep 30"],
                               namespaces=["pid", "network", "ipc", "uts", "mount", "user"],
                               cgroups_path=f"/labkit/{cid}")
        b = Bundle.create(work / "b", cfg)
        with store.prepare_rootfs("busybox", b.rootfs):
            out = work / "out"
            fd = os.open(out, os.O_WRONLY | os.O_CREAT, 0o644)
            c = NativeContainer(b.path, cid, root=state_root, stdout=fd, stderr=fd)
            try:
                c.create(start_now=True)
                host_uid = [line.split()[1] for line in open(f"/proc/{c.pid}/status") if line.startswith("Uid:")]
                for _ in range(1000):  # wait for the three lines the script prints before sleeping
                    if out.read_text().count("\n") >= 3:
                        break
                    time.sleep(0.01)
                ex = c.exec(["sh", "-c", "id -u; touch /z"])  # exec joins the user namespace too
                assert ex.stdout.decode().strip() == "0" and b"Permission denied" in ex.stderr
            finally:
                os.close(fd)
                c.delete(force=True)
        lines = out.read_text().split("\n")
        assert lines[0] == "0" and lines[1].split() == ["0", "100000", "65536"]
        assert "Permission denied" in lines[2]  # image files belong to host root, not to the mapped root
        assert host_uid == ["100000"]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_user_namespace_needs_a_reachable_rootfs(make_bundle, state_root):
    b = make_bundle(["true"], namespaces=["pid", "mount", "user"])
    with pytest.raises(NativeError, match="cannot enter .*chmod o\\+x"):
        NativeContainer(b, bundle_id(b), root=state_root).create()


def test_run_fast_path_still_reports_setup_errors(make_bundle, state_root):
    b = make_bundle(["no-such-program"])
    with pytest.raises(ExecutableNotFound, match="executable not found in image"):
        NativeContainer(b, bundle_id(b), root=state_root).run()
    assert not (state_root / bundle_id(b)).exists()
    ok = make_bundle(["sh", "-c", "exit 4"])
    assert NativeContainer(ok, bundle_id(ok), root=state_root).run().code == 4


def test_bind_mounts_and_extra_devices(make_bundle, state_root, tmp_path):
    from labkit.runtime.base import Device, Mount

    data = tmp_path / "data"
    data.mkdir()
    (data / "hello.txt").write_text("from the host\n")
    rw = tmp_path / "rw"
    rw.mkdir()
    b = make_bundle(["sh", "-c", "cat /data/hello.txt; touch /data/new 2>&1; echo saved > /rw/out;"
                                 " echo x > /dev/extra-null && echo device-ok"],
                    mounts=[Mount(str(data), "/data", readonly=True), Mount(str(rw), "/rw")],
                    devices=[Device("/dev/null", "/dev/extra-null")])
    code, out, err, c = run(b, state_root)
    c.delete()
    assert code == 0, err
    lines = out.split("\n")
    assert lines[0] == "from the host"
    assert "Read-only file system" in lines[1]
    assert (rw / "out").read_text() == "saved\n"  # a writable volume: the write reached the host
    assert "device-ok" in out


def test_an_unprivileged_user_inside_can_use_dev_null(make_bundle, state_root):
    b = make_bundle(["sh", "-c", "id -u; echo x > /dev/null && echo null-ok; touch /etc/x 2>&1"], uid=65534, gid=65534)
    code, out, err, c = run(b, state_root)
    c.delete()
    lines = out.split("\n")
    assert lines[0] == "65534" and lines[1] == "null-ok" and "Permission denied" in lines[2], (out, err)


def test_a_new_network_namespace_has_loopback_up(make_bundle, state_root):
    b = make_bundle(["sh", "-c", "ip -o link show lo; ping -c 1 -W 1 127.0.0.1 >/dev/null && echo ping-ok"])
    code, out, err, c = run(b, state_root)
    c.delete()
    assert code == 0, err
    assert "LOOPBACK,UP" in out and "ping-ok" in out


def test_a_mount_destination_behind_a_link_out_of_the_root_is_refused(make_bundle, state_root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    b = make_bundle(["true"], mounts=[{"destination": "/escape/x", "type": "tmpfs", "source": "tmpfs",
                                       "options": ["nosuid"]}])
    (b / "rootfs" / "escape").symlink_to(outside)
    with pytest.raises(NativeError, match="resolves outside the container root"):
        NativeContainer(b, bundle_id(b), root=state_root).run()
    assert list(outside.iterdir()) == []


def test_an_executable_hint_is_used_only_when_it_is_right(tmp_path):
    from labkit.oci.native.init import find_executable

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "tool").write_text("not executable\n")
    tool = tmp_path / "b" / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    env = [f"PATH={tmp_path / 'a'}:{tmp_path / 'b'}"]
    assert find_executable("tool", env, "/", hint=str(tool)) == str(tool)
    assert find_executable("tool", env, "/", hint=str(tmp_path / "a" / "tool")) == str(tool)
    assert find_executable("tool", env, "/", hint=str(tmp_path / "nowhere")) == str(tool)


def test_the_lean_cgroup_steps_match_the_cgroup_api():
    """labkit.oci.cgroupfs (labkit run's short way) and labkit.oci.cgroups.Cgroup put a
    container in the same directories with the same limits and device rules."""
    from labkit.oci import cgroupfs

    res = spec.linux_resources(Resources(memory_bytes=64 * 2**20, cpu_quota_us=50_000, pids_limit=20))
    a, b = new_id("lean"), new_id("full")
    lean, full = cgroupfs.Cgroup(f"/labkit/{a}"), cgroups.Cgroup(f"/labkit/{b}")
    try:
        joins = lean.create(res)
        full.create()
        full.set_resources(res)
        assert [d.replace(a, "ID") for d in lean.dirs()] == [str(d).replace(b, "ID") for d in full.dirs()]
        assert [j.replace(a, "ID") for j in joins] == [str(p).replace(b, "ID") for p in full.join_files()]
        files = ("memory.limit_in_bytes", "memory.max", "cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.max",
                 "pids.max", "devices.list")
        compared = 0
        for dl, df in zip(lean.dirs(), full.dirs(), strict=True):
            for f in files:
                if (Path(df) / f).exists():
                    assert (Path(dl) / f).read_text() == (Path(df) / f).read_text(), f
                    compared += 1
        assert compared >= 3
        assert lean.oom_kills() == 0
    finally:
        lean.destroy()
        full.destroy()
    assert not any(Path(d).exists() for d in lean.dirs() + [str(d) for d in full.dirs()])


def test_records_written_without_the_json_module_read_back_the_same():
    from labkit.cli.fastpath.foreground import to_json

    cfg = spec.make_config(["sh", "-c", 'echo "$HOME" \\ \t tab'], env={"A": "é ünï 😀", "B": "\x01\b\f\n"},
                           hostname="h", resources=Resources(memory_bytes=2**25, cpu_quota_us=5000, pids_limit=3))
    for value in (cfg, {"exit_code": 137, "reason": "OOMKilled", "finished_at": 1796013477.615761, "x": None,
                        "ok": True, "no": False, "list": [], "nested": {"": [1.5, -2]}}):
        assert json.loads(to_json(value)) == value
        assert to_json(value) == json.dumps(value)
