"""OCI runtime-spec bundles: valid config.json that real runc and crun run unchanged."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from support.containers import bundle_id, needs_root

from labkit.oci import crun, spec
from labkit.oci.bundle import Bundle, BundleError
from labkit.oci.resources import Resources
from labkit.runtime.base import Device, Mount


def test_config_has_the_runtime_spec_fields():
    cfg = spec.make_config(["sh", "-c", "echo hi"], env={"A": "1"}, hostname="web",
                           resources=Resources(memory_bytes=64 << 20, cpu_quota_us=50_000, pids_limit=20))
    assert cfg["ociVersion"].startswith("1.0")
    assert cfg["process"]["args"] == ["sh", "-c", "echo hi"]
    assert "A=1" in cfg["process"]["env"] and any(e.startswith("PATH=") for e in cfg["process"]["env"])
    assert cfg["process"]["noNewPrivileges"] is True
    assert "CAP_SYS_ADMIN" not in cfg["process"]["capabilities"]["bounding"]
    assert {n["type"] for n in cfg["linux"]["namespaces"]} == {"pid", "network", "ipc", "uts", "mount"}
    assert cfg["linux"]["resources"]["memory"]["limit"] == 64 << 20
    assert cfg["linux"]["resources"]["cpu"] == {"quota": 50_000, "period": 100_000}
    assert cfg["linux"]["resources"]["pids"] == {"limit": 20}
    assert cfg["linux"]["cgroupsPath"] == "/labkit/web"
    assert [m["destination"] for m in cfg["mounts"]][:2] == ["/proc", "/dev"]


def test_joining_a_pod_network_namespace_by_path():
    cfg = spec.make_config(["true"], netns_path="/var/run/netns/labkit-pod1")
    net = [n for n in cfg["linux"]["namespaces"] if n["type"] == "network"]
    assert net == [{"type": "network", "path": "/var/run/netns/labkit-pod1"}]


def test_bad_requests_get_clear_errors(tmp_path):
    with pytest.raises(spec.SpecError, match="needs a command"):
        spec.make_config([])
    with pytest.raises(spec.SpecError, match="too small to start"):
        spec.make_config(["true"], resources=Resources(memory_bytes=1 << 20))
    with pytest.raises(spec.SpecError, match="absolute path"):
        spec.make_config(["true"], cwd="tmp")
    with pytest.raises(spec.SpecError, match="does not exist on the host"):
        spec.make_config(["true"], mounts=[Mount(str(tmp_path / "nope"), "/data")])
    with pytest.raises(ValueError, match="unknown capability"):
        spec.make_config(["true"], capabilities=["CAP_FLY"])
    with pytest.raises(spec.SpecError, match="not a device"):
        spec.make_config(["true"], devices=[Device(str(tmp_path), "/dev/x")])
    with pytest.raises(BundleError, match="no config.json"):
        Bundle.open(tmp_path)


def test_bind_mounts_and_devices_become_spec_entries(tmp_path):
    cfg = spec.make_config(["true"], mounts=[Mount(str(tmp_path), "/data", readonly=True)],
                           devices=[Device("/dev/fuse" if False else "/dev/null", "/dev/extra-null")])
    bind = cfg["mounts"][-1]
    assert bind["destination"] == "/data" and bind["type"] == "bind" and "ro" in bind["options"]
    assert cfg["linux"]["devices"][0]["path"] == "/dev/extra-null"
    assert cfg["linux"]["devices"][0]["major"] == 1


def _run_real(binary: str, bundle, tmp_path) -> subprocess.CompletedProcess:  # noqa: ANN001
    root = tmp_path / f"{binary}-root"
    argv = crun.command(binary, ["run", "--bundle", str(bundle), bundle_id(bundle)], root=str(root))
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    finally:
        subprocess.run(crun.command(binary, ["delete", "--force", bundle_id(bundle)], root=str(root)),
                       capture_output=True)


@needs_root
@pytest.mark.parametrize("binary", ["runc", "crun"])
def test_real_oci_runtimes_accept_the_bundle(binary, make_bundle, tmp_path, no_leaks):
    if shutil.which(binary) is None:
        pytest.skip(f"{binary} is not installed")
    b = make_bundle(["sh", "-c", "echo pid=$$; hostname; grep NoNewPrivs /proc/self/status; exit 3"],
                    hostname="spec-test", resources=Resources(memory_bytes=64 << 20, pids_limit=50))
    out = _run_real(binary, b, tmp_path)
    assert out.returncode == 3, out.stderr
    lines = out.stdout.split("\n")
    assert lines[0] == "pid=1" and lines[1] == "spec-test"
    assert lines[2].split() == ["NoNewPrivs:", "1"]


@needs_root
def test_runc_and_native_report_the_same_state_fields(make_bundle, tmp_path, state_root, no_leaks):
    if shutil.which("runc") is None:
        pytest.skip("runc is not installed")
    from labkit.oci.native import NativeContainer

    b = make_bundle(["sleep", "30"])
    cid = bundle_id(b)
    root = tmp_path / "runc-root"
    # the container keeps runc's stdio: give it files, not pipes a reader would wait on
    subprocess.run(["runc", "--root", str(root), "create", "--bundle", str(b), cid + "r"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, timeout=60)
    try:
        runc_state = json.loads(subprocess.run(["runc", "--root", str(root), "state", cid + "r"],
                                               capture_output=True, text=True).stdout)
    finally:
        subprocess.run(["runc", "--root", str(root), "delete", "--force", cid + "r"], capture_output=True)
    c = NativeContainer(b, cid, root=state_root)
    c.create()
    try:
        ours = c.state()
    finally:
        c.delete(force=True)
    assert runc_state["status"] == ours["status"] == "created"
    assert {"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created"} <= set(ours) & set(runc_state)


@needs_root
@pytest.mark.parametrize("binary", ["runc", "crun"])
def test_real_runtimes_accept_mounts_devices_and_limits(binary, make_bundle, tmp_path, no_leaks):
    if shutil.which(binary) is None:
        pytest.skip(f"{binary} is not installed")
    data = tmp_path / "data"
    data.mkdir()
    (data / "f").write_text("host data\n")
    b = make_bundle(["sh", "-c", "cat /data/f; touch /data/x 2>&1; echo x > /dev/extra-null && echo dev-ok"],
                    mounts=[Mount(str(data), "/data", readonly=True)],
                    devices=[Device("/dev/null", "/dev/extra-null")],
                    resources=Resources(memory_bytes=64 << 20, cpu_quota_us=50_000, pids_limit=20))
    out = _run_real(binary, b, tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")
    assert lines[0] == "host data" and "Read-only file system" in lines[1] and lines[2] == "dev-ok"
