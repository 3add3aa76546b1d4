"""Pod start-up path: the node's one-time network set-up happens when the kubelet starts, not on
its first pod, and the Node says NotReady (NetworkPluginNotReady) until it is done."""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
import uuid

import pytest
from support.cni import needs_root, sandbox

from labkit.client import Client
from labkit.client.kubeconfig import write_kubeconfig
from labkit.controlplane.apiserver import APIServer
from labkit.node.cni.plugin import BRIDGE, CNINetworkPlugin
from labkit.node.kubelet.kubelet import Kubelet
from labkit.node.kubelet.plugins import NetworkPlugin, NodePlugins, PluginError
from labkit.runtime.simulated import HollowRuntime


class NeedsPodCIDR(NetworkPlugin):
    """A network that, like the CNI one, can only be built once the Node has a podCIDR."""

    def __init__(self) -> None:
        self.prepared_with: list[str] = []

    def prepare_node(self, node: dict | None) -> None:
        cidr = ((node or {}).get("spec") or {}).get("podCIDR")
        if not cidr:
            raise PluginError("no podCIDR yet", reason="NetworkNotReady")
        self.prepared_with.append(cidr)


class Broken(NetworkPlugin):
    def prepare_node(self, node: dict | None) -> None:
        raise PluginError("CNI needs root and iproute2", reason="NetworkPluginFailed")


def _ready(node: dict) -> dict:
    return next(c for c in node["status"]["conditions"] if c["type"] == "Ready")


async def _poll(fn, what: str, tries: int = 100):
    for _ in range(tries):
        got = await fn()
        if got:
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _with_kubelet(scenario, network: NetworkPlugin):
    with APIServer("memory") as api, tempfile.NamedTemporaryFile(suffix=".kubeconfig") as kc:
        write_kubeconfig(kc.name, api.url)

        async def run():
            client = Client(kc.name)
            k = Kubelet(client, "node-1", HollowRuntime(), NodePlugins(network=network),
                        capacity={"cpu": "2", "memory": "1Gi", "pods": "10"}, serve_logs=False, pod_poll=0.1)
            try:
                await k.start()
                return await scenario(client, k)
            finally:
                await k.stop()
                await client.close()

        return asyncio.run(run())


def test_node_is_not_ready_until_its_network_is_set_up():
    net = NeedsPodCIDR()

    async def scenario(client, k):
        before = _ready(await client.get("nodes", "node-1"))
        assert net.prepared_with == []
        # what the node-IPAM controller does after registration
        await client.patch("nodes", "node-1", {"spec": {"podCIDR": "10.244.9.0/24"}})

        async def ready():
            node = await client.get("nodes", "node-1")
            return _ready(node)["status"] == "True" and node

        await _poll(ready, "the Node to go Ready once its network is set up")
        return before

    before = _with_kubelet(scenario, net)
    assert before["status"] == "False"
    assert "NetworkPluginNotReady" in before["message"]
    assert net.prepared_with == ["10.244.9.0/24"], "set up once, with the Node's podCIDR, before any pod"


def test_a_network_that_cannot_be_built_does_not_keep_the_node_down():
    async def scenario(client, k):
        return _ready(await client.get("nodes", "node-1")), k.network_error

    ready, error = _with_kubelet(scenario, Broken())
    assert ready["status"] == "True"  # pods report the network error themselves, as before
    assert "iproute2" in error


@needs_root
@pytest.mark.parametrize("plugin", ["bridge", "lk-bridge"])
def test_the_bridge_exists_before_the_first_pod_and_the_pod_uses_it(state, plugin):
    n = CNINetworkPlugin(f"t{uuid.uuid4().hex[:5]}", "10.244.7.0/24", plugin=plugin, fabric=state)
    try:
        n.prepare()
        n.prepare()  # a restarted kubelet prepares again: nothing changes, nothing fails
        out = subprocess.run(["ip", "-n", n.node.netns, "-j", "addr", "show", "dev", BRIDGE],
                             capture_output=True, text=True, check=True).stdout
        (link,) = json.loads(out)
        assert "UP" in link["flags"]
        assert [(a["local"], a["prefixlen"]) for a in link["addr_info"] if a["family"] == "inet"] == [("10.244.7.1", 24)]
        sb = sandbox("a")
        assert n.setup_pod({"metadata": {"name": "a"}}, sb) == "10.244.7.2"
        r = n.exec_in_pod(sb, "ip", "route", "show", "10.244.0.0/16")
        assert "via 10.244.7.1" in r.stdout  # the pod's gateway to other pods is the bridge made ahead of it
        assert n.exec_in_pod(sb, "busybox", "ping", "-c1", "-W2", "10.244.7.1").returncode == 0
        n.teardown_pod({}, sb)
    finally:
        n.close()


def test_a_steady_container_that_exits_is_noticed_and_restarted():
    """Running pods are not polled one by one: the node's relist (PLEG) notices the exit."""
    import time

    from labkit.cluster import Cluster

    with Cluster(nodes=1, store="memory", processes=True) as c:
        core = c.core()
        core.create_namespaced_pod("default", {"metadata": {"name": "short"}, "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "sleep 2; exit 3"]}]}})
        deadline = time.time() + 60
        st = None
        while time.time() < deadline:
            pod = core.read_namespaced_pod("short", "default")
            st = (pod.status.container_statuses or [None])[0]
            if st is not None and st.restart_count >= 1 and st.last_state.terminated is not None:
                break
            time.sleep(0.2)
        assert st is not None and st.restart_count >= 1, f"the exit was never noticed: {st}"
        assert st.last_state.terminated.exit_code == 3
        core.delete_namespaced_pod("short", "default")
