"""Known container escapes, tried from inside real containers on native, runc and crun.

Each attempt runs inside a container built from labkit's default spec (seccomp included) and must
fail; the same attempts run on the host, unconfined, first, so a test cannot pass because an
attempt was broken rather than blocked. The probe is :mod:`labkit.oci.escape_probe`.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess

import pytest
from support.containers import needs_root, new_id

from labkit.oci import capabilities, escape, hardening, seccomp, spec

SECRET = "database password: hunter2"


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """A host file to steal, a host process to trace, and what the host itself can do."""
    d = tmp_path_factory.mktemp("lkct-escape")
    secret = d / "host-secret.txt"
    secret.write_text(SECRET + "\n")
    jail = d / "jail"
    jail.mkdir()
    sleeper = subprocess.Popen(["sleep", "300"])
    try:
        aim = escape.probe_aim(str(secret), sleeper.pid)
        host = escape.probe_host({**aim, "jail": str(jail), "scratch": str(d)})
        yield aim, host
    finally:
        sleeper.kill()
        sleeper.wait()


def test_default_profile_denies_the_dangerous_calls_and_widens_with_capabilities():
    prof = spec.make_config(["sh"])["linux"]["seccomp"]
    assert prof["defaultAction"] == "SCMP_ACT_ERRNO" and prof["defaultErrnoRet"] == 1
    allowed = seccomp.allowed_names(prof)
    for call in ("mount", "umount2", "pivot_root", "kexec_load", "init_module", "finit_module", "delete_module",
                 "ptrace", "swapon", "reboot", "open_by_handle_at", "bpf", "perf_event_open", "keyctl",
                 "add_key", "request_key", "unshare", "setns", "clock_settime", "acct"):
        assert call not in allowed, call
    assert {"read", "execve", "chroot", "clone", "socket"} <= allowed
    admin = spec.make_config(["sh"], capabilities=capabilities.DEFAULT_CAPABILITIES + ["CAP_SYS_ADMIN"])
    assert {"mount", "unshare", "setns"} <= seccomp.allowed_names(admin["linux"]["seccomp"])
    assert "seccomp" not in spec.make_config(["sh"], seccomp="unconfined")["linux"]
    with pytest.raises(spec.SpecError, match="seccomp must be"):
        spec.make_config(["sh"], seccomp="strict")


@needs_root
def test_the_profile_compiles_to_a_filter_the_kernel_takes():
    f = seccomp.compile_profile(spec.make_config(["sh"])["linux"]["seccomp"])
    assert 0 < f.instructions <= 4096  # BPF_MAXINSNS
    with pytest.raises(seccomp.SeccompError, match="leave out this machine"):
        seccomp.compile_profile({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_S390X"]})


def test_labkit_is_never_looser_than_runc_where_both_protect():
    if shutil.which("runc") is None:
        pytest.skip("runc is not installed")
    rows = {r.what: r for r in hardening.compare()}
    for what in ("masked paths", "read-only paths", "no_new_privs", "devices cgroup", "seccomp", "namespaces",
                 "capabilities: ambient", "capabilities: inheritable"):
        assert rows[what].verdict in ("same", "labkit stricter"), rows[what]
    assert rows["seccomp"].verdict == "labkit stricter"
    # the capability sets are Docker's, wider than `runc spec`'s three; the table says so
    assert rows["capabilities: bounding"].verdict == "labkit looser"


@needs_root
def test_each_attempt_works_on_the_unconfined_host(target):
    _, host = target
    assert host["chroot"] == {"ok": True, "read": SECRET}  # lab 04: plain chroot does not hold
    assert host["mount_disk"]["mknod"] == "ok"  # a node for the root disk can be made
    assert host["load_module"]["errno"] != "EPERM"  # the call reaches the module loader
    assert host["proc_sys"]["ok"] and host["ptrace"]["ok"] and host["cgroupfs"]["ok"]
    assert host["unshare_user"]["ok"]


@needs_root
@pytest.mark.parametrize("runtime", escape.RUNTIMES)
def test_escape_attempts_fail_inside_a_container(runtime, target, tmp_path, state_root, no_leaks):
    if runtime != "native" and shutil.which(runtime) is None:
        pytest.skip(f"{runtime} is not installed")
    aim, _ = target
    cid = new_id("esc")
    bundle = escape.probe_bundle(str(tmp_path / "bundle"), aim, cid)
    got = escape.run_probe(runtime, bundle, cid, str(state_root))
    # the chroot escape ends at the image's own "/" (pivot_root left nothing above it)
    assert not got["chroot"]["ok"] and got["chroot"]["errno"] == "ENOENT"
    assert "probe.py" in got["chroot"]["root"]
    # the host's disk: no usable node (devices cgroup), no mount (seccomp, no CAP_SYS_ADMIN)
    assert not got["mount_disk"]["ok"] and got["mount_disk"]["mount"] == "EPERM"
    assert got["mount_disk"].get("open", "EPERM") == "EPERM"
    # modules, ptrace and new user namespaces: refused by the seccomp filter
    assert got["load_module"] == {"ok": False, "errno": "EPERM", "finit_module": "EPERM"}
    assert got["ptrace"] == {"ok": False, "errno": "EPERM"}
    assert got["unshare_user"] == {"ok": False, "errno": "EPERM"}
    # /proc/sys is read-only; the host's cgroups are out of reach and cannot be mounted
    assert got["proc_sys"] == {"ok": False, "errno": "EROFS"}
    assert not got["cgroupfs"]["ok"] and got["cgroupfs"]["open"] == "ENOENT" and got["cgroupfs"]["mount"] == "EPERM"


@needs_root
def test_exec_into_a_native_container_gets_the_filter_too(make_bundle, state_root):
    from labkit.oci.native import NativeContainer

    b = make_bundle(["sleep", "30"])
    c = NativeContainer(b, b.name.removeprefix("bundle-"), root=state_root)
    c.create()
    try:
        c.start()
        out = c.exec(["sh", "-c", "grep Seccomp: /proc/self/status; unshare -U true"])
    finally:
        c.delete(force=True)
    assert out.stdout.decode().split() == ["Seccomp:", "2"]
    assert out.exit_code != 0 and b"Operation not permitted" in out.stderr


@needs_root
def test_cgroup_v2_device_filter_follows_the_rules(tmp_path):
    """On cgroup v2 the devices cgroup is a BPF program; the last matching rule decides."""
    from labkit.oci import devicefilter
    from labkit.oci.cgroups import detect_layout

    v2 = detect_layout().v2
    if v2 is None:
        pytest.skip("no cgroup v2 hierarchy is mounted")
    group = v2 / new_id("dev")
    group.mkdir()
    rules = spec.linux_resources(None)["devices"] + [
        {"allow": False, "type": "c", "major": 1, "minor": 5, "access": "w"}]  # /dev/zero: read-only
    try:
        devicefilter.attach(str(group), rules)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            seen = []
            try:
                (group / "cgroup.procs").write_text("0")
                for path, flags in (("/dev/null", os.O_RDWR), ("/dev/zero", os.O_RDONLY), ("/dev/zero", os.O_WRONLY)):
                    try:
                        os.close(os.open(path, flags))
                        seen.append("ok")
                    except OSError as exc:
                        seen.append(errno.errorcode[exc.errno])
                try:
                    os.mknod(str(tmp_path / "kmsg"), 0o600 | stat.S_IFCHR, os.makedev(1, 11))
                    seen.append("ok")
                except OSError as exc:
                    seen.append(errno.errorcode[exc.errno])
            finally:
                os.write(w, " ".join(seen).encode())
                os._exit(0)
        os.close(w)
        os.waitpid(pid, 0)
        got = os.read(r, 1000).decode().split()
        os.close(r)
    finally:
        group.rmdir()
    assert got == ["ok", "ok", "EPERM", "EPERM"]
