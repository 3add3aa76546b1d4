"""Pod sandbox namespaces (labkit.runtime.sandbox) made without subprocesses: what a pod sees."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from support.runtime import available

from labkit.errors import LabkitError
from labkit.runtime import sandbox

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(not available("native")[0], reason="needs root and namespaces")]


def _mounted(fragment: str) -> bool:
    return fragment in Path("/proc/self/mounts").read_text()


def test_a_sandbox_has_its_own_network_hostname_and_ipc_and_the_caller_keeps_the_hosts(tmp_path):
    sid = "t" + uuid.uuid4().hex[:15]
    host = {k: os.readlink(f"/proc/self/ns/{k}") for k in ("net", "uts", "ipc")}
    host_name = os.uname().nodename
    ns = sandbox.create_namespaces(sid, tmp_path / "ns", "my-pod")
    try:
        assert ns.net == f"/var/run/netns/labkit-{sid}" and os.path.exists(ns.net)
        out = subprocess.run(["nsenter", f"--net={ns.net}", f"--uts={ns.uts}", f"--ipc={ns.ipc}", "sh", "-c",
                              "hostname; ip -o link show lo; readlink /proc/self/ns/net /proc/self/ns/uts "
                              "/proc/self/ns/ipc"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[0] == "my-pod"
        assert "LOOPBACK,UP" in lines[1]
        assert set(lines[2:5]).isdisjoint(host.values())
        # ip netns knows it, as CNI plugins expect
        assert f"labkit-{sid}" in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        # nothing of this process moved
        assert {k: os.readlink(f"/proc/self/ns/{k}") for k in host} == host
        assert os.uname().nodename == host_name
    finally:
        sandbox.destroy_namespaces(sid, tmp_path / "ns")
    assert not os.path.exists(ns.net) and not _mounted(sid) and not _mounted(str(tmp_path))
    sandbox.destroy_namespaces(sid, tmp_path / "ns")  # twice is fine


def test_a_taken_name_is_refused_plainly_and_the_first_sandbox_stays(tmp_path):
    sid = "t" + uuid.uuid4().hex[:15]
    sandbox.create_namespaces(sid, tmp_path / "a", "pod-a")
    try:
        with pytest.raises(LabkitError, match="creating network namespace failed: .*File exists"):
            sandbox.create_namespaces(sid, tmp_path / "b", "pod-b")
        assert os.path.exists(f"/var/run/netns/labkit-{sid}") and _mounted(f"labkit-{sid}")
    finally:
        sandbox.destroy_namespaces(sid, tmp_path / "a")
    assert not _mounted(sid)


def test_a_bad_hostname_fails_cleanly(tmp_path):
    sid = "t" + uuid.uuid4().hex[:15]
    with pytest.raises(LabkitError, match="creating UTS/IPC namespaces failed"):
        sandbox.create_namespaces(sid, tmp_path / "ns", "x" * 100)
    assert not os.path.exists(f"/var/run/netns/labkit-{sid}") and not _mounted(sid) and not _mounted(str(tmp_path))
