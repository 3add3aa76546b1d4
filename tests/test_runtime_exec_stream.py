"""CRI ``Exec`` on every backend: the URL it answers runs the command in the container, streamed.

What a kubelet (and so ``kubectl exec``) relies on: stdin to its end, stdout and stderr apart,
the exit code as a Status, and the pod's namespaces (its hostname), on native, runc, crun,
docker and simulated alike.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from support.runtime import backend_param
from support.streams import converse

import labkit.runtime as rt
from labkit.errors import LabkitError
from labkit.runtime.base import ContainerConfig, PodSandboxConfig
from labkit.runtime.simulated import HollowRuntime


@pytest.mark.parametrize("backend", backend_param())
def test_exec_streams_stdin_output_and_exit_code(backend):
    r = rt.get(backend)
    sconf = PodSandboxConfig(name="t-exec", hostname="t-exec")
    sid = r.run_pod_sandbox(sconf)
    try:
        cid = r.create_container(sid, ContainerConfig(name="app", image="busybox", command=["sleep", "60"]), sconf)
        r.start_container(cid)
        url = r.exec(cid, ["sh", "-c", "cat; hostname; echo e >&2; exit 5"], stdin=True)
        _, got = asyncio.run(converse(url, "v5.channel.k8s.io", [b"\x00piped ", b"\x00in\n", b"\xff\x00"]))
        lines = got[1].decode().splitlines()
        assert lines[0] == "piped in"
        if backend != "simulated":  # the simulated runtime runs host processes: the host's name
            assert lines[1] == "t-exec"
        assert got[2] == b"e\n"
        assert json.loads(got[3])["details"]["causes"] == [{"reason": "ExitCode", "message": "5"}]
    finally:
        r.remove_pod_sandbox(sid)
        r.close()


def test_exec_into_a_stopped_container_says_it_is_not_running():
    r = rt.get("simulated")
    sconf = PodSandboxConfig(name="t-exec-stopped")
    sid = r.run_pod_sandbox(sconf)
    try:
        cid = r.create_container(sid, ContainerConfig(name="app", image="busybox", command=["true"]), sconf)
        with pytest.raises(LabkitError, match="not running"):
            r.exec(cid, ["true"])
    finally:
        r.remove_pod_sandbox(sid)


def test_the_hollow_runtime_says_it_cannot_exec():
    r = HollowRuntime()
    sconf = PodSandboxConfig(name="h")
    sid = r.run_pod_sandbox(sconf)
    cid = r.create_container(sid, ContainerConfig(name="app", image="busybox"), sconf)
    r.start_container(cid)
    with pytest.raises(LabkitError, match="hollow node"):
        r.exec(cid, ["true"])
