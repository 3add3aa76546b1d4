"""Hollow nodes: many kubelets in one process on the bookkeeping-only runtime, scheduled onto for real."""

from __future__ import annotations

import asyncio
import tempfile

from labkit.client import Client
from labkit.client.kubeconfig import write_kubeconfig
from labkit.controlplane.apiserver import APIServer
from labkit.controlplane.scheduler.scheduler import Scheduler
from labkit.node.kubelet.hollow import HollowNodes


def test_fifty_hollow_nodes_register_and_run_scheduled_pods():
    with APIServer("memory") as api, tempfile.NamedTemporaryFile(suffix=".kubeconfig") as kc:
        write_kubeconfig(kc.name, api.url)

        async def scenario():
            client = Client(kc.name)
            nodes = HollowNodes(client, 50, cpu="1", lease_interval=1)
            sched = Scheduler(client)
            try:
                await nodes.start()
                task = asyncio.create_task(sched.run())
                for i in range(100):
                    await client.create("pods", {"metadata": {"name": f"h{i}"}, "spec": {"containers": [
                        {"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "400m"}}}]}})
                for _ in range(300):
                    items = (await client.list("pods", "default"))["items"]
                    if sum(1 for p in items if (p.get("status") or {}).get("phase") == "Running") == 100:
                        break
                    await asyncio.sleep(0.1)
                node_list = (await client.list("nodes"))["items"]
                leases = (await client.list("leases", "kube-node-lease"))["items"]
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                return items, node_list, leases
            finally:
                await nodes.stop()
                await client.close()

        pods, node_list, leases = asyncio.run(scenario())
    assert len(node_list) == 50 and len(leases) == 50
    assert all(n["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("simulated://hollow")
               for n in node_list)
    assert all(p["status"]["phase"] == "Running" for p in pods)
    per_node: dict[str, int] = {}
    for p in pods:
        per_node[p["spec"]["nodeName"]] = per_node.get(p["spec"]["nodeName"], 0) + 1
    assert max(per_node.values()) == 2, "1 cpu per node, 400m per pod: two pods each"
