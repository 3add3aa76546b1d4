"""Seams between the kubelet and the node's plug points: what a user sees on Node and pod status."""

from __future__ import annotations

import asyncio
import tempfile

from labkit.client import Client
from labkit.client.kubeconfig import write_kubeconfig
from labkit.controlplane.apiserver import APIServer
from labkit.node.kubelet.kubelet import Kubelet
from labkit.node.kubelet.plugins import DevicePlugins, NodePlugins
from labkit.runtime.base import VersionInfo
from labkit.runtime.simulated import HollowRuntime


class TwoGpusOneSick(DevicePlugins):
    """Two GPUs registered, one reported Unhealthy."""

    def capacity(self) -> dict[str, int]:
        return {"nvidia.com/gpu": 1}

    def total(self) -> dict[str, int]:
        return {"nvidia.com/gpu": 2}


class SwappableRuntime(HollowRuntime):
    """A runtime whose name changes, as a CRI socket does when its server restarts on another backend."""

    name = "native"

    def version(self) -> VersionInfo:
        return VersionInfo(runtime_name=self.name, runtime_version="test")


def _with_kubelet(scenario, runtime, plugins=None):
    with APIServer("memory") as api, tempfile.NamedTemporaryFile(suffix=".kubeconfig") as kc:
        write_kubeconfig(kc.name, api.url)

        async def run():
            client = Client(kc.name)
            k = Kubelet(client, "node-1", runtime, plugins, capacity={"cpu": "2", "memory": "1Gi", "pods": "10"},
                        serve_logs=False, hollow=True, pod_poll=0.1)
            try:
                await k.start()
                return await scenario(client, k)
            finally:
                await k.stop()
                await client.close()

        return asyncio.run(run())


async def _poll(fn, what, tries=200):
    for _ in range(tries):
        got = await fn()
        if got:
            return got
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_unhealthy_device_counts_in_capacity_but_not_in_allocatable():
    async def scenario(client, k):
        return (await client.get("nodes", "node-1"))["status"]

    status = _with_kubelet(scenario, HollowRuntime(), NodePlugins(devices=TwoGpusOneSick()))
    assert status["capacity"]["nvidia.com/gpu"] == "2"
    assert status["allocatable"]["nvidia.com/gpu"] == "1"
    assert status["capacity"]["cpu"] == status["allocatable"]["cpu"] == "2"


def test_container_ids_and_node_follow_a_runtime_swap():
    rt = SwappableRuntime()

    async def container_id(client, name):
        async def get():
            pod = await client.get("pods", name, "default")
            cs = (pod.get("status") or {}).get("containerStatuses") or []
            return cs and cs[0].get("containerID")
        return await _poll(get, f"{name}'s containerID")

    async def scenario(client, k):
        def pod(name):
            return {"metadata": {"name": name}, "spec": {"nodeName": "node-1",
                                                         "containers": [{"name": "c", "image": "busybox"}]}}
        await client.create("pods", pod("before"))
        first = await container_id(client, "before")
        rt.name = "docker"  # the CRI server came back on another backend
        await client.create("pods", pod("after"))
        second = await container_id(client, "after")
        node = await client.get("nodes", "node-1")
        return first, second, node["status"]["nodeInfo"]["containerRuntimeVersion"]

    first, second, node_runtime = _with_kubelet(scenario, rt)
    assert first.startswith("native://")
    assert second.startswith("docker://")
    assert node_runtime == "docker://test"


def test_importing_a_grpc_module_first_turns_off_grpc_fork_handlers():
    """A notebook that imports a CRI/CSI/device-plugin module before labkit.cluster must not hang on fork."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "GRPC_ENABLE_FORK_SUPPORT"}
    for module in ("labkit.node.cri.server", "labkit.node.csi.driver", "labkit.node.deviceplugin.manager"):
        code = (f"import {module}, os, sys; assert 'grpc' in sys.modules; "
                "print(os.environ.get('GRPC_ENABLE_FORK_SUPPORT'))")
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "0", module


def test_two_processes_updating_one_container_record_never_trip_over_each_other(tmp_path):
    """CRI backend workers and shims write the same container's files; none may see a vanished temp file."""
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from labkit.runtime import records\n"
            "for i in range(400): records.write_json(Path(sys.argv[1]), {'writer': sys.argv[2], 'i': i})\n")
    target = tmp_path / "exit.json"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(target), str(n)], stderr=subprocess.PIPE, text=True)
             for n in range(3)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    from labkit.runtime import records

    assert records.read_json(target)["i"] == 399
    assert [p.name for p in tmp_path.iterdir()] == ["exit.json"], "no temp files left behind"


_START_AND_EXIT = """
import os, sys, uuid
import labkit.runtime as runtimes
from labkit.runtime.base import ContainerConfig, PodSandboxConfig
held = os.dup(1)  # a descriptor of the caller's (like a notebook's socket): not inheritable, never exec'd
rt = runtimes.get("native")
sb = PodSandboxConfig(name="lk-fdtest", uid=uuid.uuid4().hex)
sid = rt.run_pod_sandbox(sb)
cid = rt.create_container(sid, ContainerConfig(name="lk-fdtest", image="busybox", command=["sleep", "30"]), sb)
rt.start_container(cid)
open(sys.argv[1], "w").write(f"{sid} {cid}")
print("started", flush=True)
"""


def test_native_shim_does_not_hold_its_callers_descriptors(tmp_path):
    """``id=$(labkit run -d --runtime native ...)`` returns when labkit exits, not when the container does."""
    import os
    import subprocess
    import sys

    import pytest
    from support.runtime import available, labkit

    ok, why = available("native")
    if not ok:
        pytest.skip(why)
    ids_file = tmp_path / "ids"
    proc = subprocess.Popen([sys.executable, "-c", _START_AND_EXIT, str(ids_file)], stdout=subprocess.PIPE, text=True)
    try:
        out, _ = proc.communicate(timeout=20)  # EOF on the pipe: no shim kept the caller's copy
    except subprocess.TimeoutExpired:
        out = ""
    finally:
        proc.kill()
        proc.wait()
    import labkit.runtime as runtimes

    ids = ids_file.read_text().split() if ids_file.exists() else []
    if len(ids) == 2:
        rt = runtimes.get("native")
        rt.stop_container(ids[1], 1)
        rt.remove_container(ids[1])
        rt.remove_pod_sandbox(ids[0])
    assert len(ids) == 2, f"the container did not start: {out}"
    assert out.strip() == "started", "the caller's output pipe stayed open after it exited: the shim held it"

    script = "id=$(labkit run -d --rm --runtime native busybox -- sleep 30); echo $id"
    shell = subprocess.run(["bash", "-c", f"exec 7>&1; {script}"], capture_output=True, text=True, timeout=20,
                           env={**os.environ, "PATH": f"{sys.prefix}/bin:{os.environ['PATH']}"})
    cid = shell.stdout.strip()
    assert shell.returncode == 0 and len(cid) >= 32, shell.stderr
    assert labkit("stop", "-t", "1", cid[:12]).returncode == 0


def _fake_docker(tmp_path, monkeypatch):
    """A ``docker`` that records its arguments and answers like a one-node swarm with one labkit service."""
    import os

    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "calls"
    script = bindir / "docker"
    script.write_text(f"""#!/bin/sh
echo "$*" >> {calls}
case "$1 $2" in
  "service ls") echo lkservice1 ;;
esac
exit 0
""")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("LABKIT_STATE", str(tmp_path / "state"))
    return calls


def test_gc_leaves_swarm_mode_only_when_labkit_turned_it_on(tmp_path, monkeypatch):
    import json

    from labkit.runtime import gc, swarm

    calls = _fake_docker(tmp_path, monkeypatch)
    # no marker: someone else's swarm, or none at all; gc does not even look
    assert gc.find_leaks(("swarm",)) == []
    gc.collect(("swarm",))
    assert not calls.exists()

    # the chapter claimed swarm mode and its process died (pid 0 is never a live process of ours)
    swarm.claim(created_gwbridge=True)
    swarm.marker().write_text(json.dumps({"pid": 0, "created_gwbridge": True}))
    assert [str(x).split(None, 1)[1] for x in gc.find_leaks(("swarm",))] == [
        "service lkservice1", "swarm mode (docker swarm leave --force)"]
    assert gc.collect(("swarm",)) == []
    done = calls.read_text().splitlines()
    assert "service rm lkservice1" in done
    assert "swarm leave --force" in done
    assert "network rm docker_gwbridge" in done
    assert not swarm.marker().exists()


def test_gc_does_not_touch_a_swarm_whose_labkit_demo_is_still_running(tmp_path, monkeypatch):
    from labkit.runtime import gc, swarm

    calls = _fake_docker(tmp_path, monkeypatch)
    swarm.claim()  # this very process: alive
    try:
        assert gc.find_leaks(("swarm",)) == []
        gc.collect(("swarm",))
        assert not calls.exists() or "swarm leave" not in calls.read_text()
        assert swarm.marker().exists()
    finally:
        swarm.release()


def test_cluster_stop_removes_the_network_of_nodes_whose_kubelet_was_killed():
    import signal
    import subprocess
    import time

    import pytest

    import labkit.runtime as runtimes
    from labkit import paths
    from labkit.cluster import Cluster
    from labkit.node.scope import cluster_scope

    if not paths.is_root():
        pytest.skip("node networks need root")

    def namespaces(scope):
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        return [line.split()[0] for line in out.splitlines() if scope in line]

    c = Cluster(nodes=1, runtime="simulated")
    c.start()
    try:
        core = c.core()
        core.create_namespaced_pod("default", {"metadata": {"name": "p"}, "spec": {
            "terminationGracePeriodSeconds": 0, "containers": [{"name": "c", "image": "busybox",
                                                                "command": ["sleep", "300"]}]}})
        for _ in range(300):
            if core.read_namespaced_pod("p", "default").status.pod_ip:
                break
            time.sleep(0.1)
        scope = cluster_scope(c.kubeconfig)
        assert namespaces(scope), "the node got a network namespace"
        sandbox = next(sb for sb in runtimes.get("simulated").list_pod_sandboxes()
                       if sb.labels.get("labkit.node", "").endswith(f"@{c.url}"))
        pod_ns = f"labkit-pod-{sandbox.id[:12]}"
        assert namespaces(pod_ns), "the CNI plugin made the pod a namespace (the simulated runtime has none)"
        c.kill("kubelet-node-1", signal.SIGKILL)  # it cannot clean up after itself
    finally:
        c.stop()
    assert namespaces(scope) == []
    assert namespaces(pod_ns) == []
