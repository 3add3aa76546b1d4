"""A DaemonSet follows the nodes: hollow kubelets join and leave, the real scheduler places the pods."""

from __future__ import annotations

import asyncio
import tempfile

from support.workloads import daemonset, eventually

from labkit.client import Client
from labkit.client.kubeconfig import write_kubeconfig
from labkit.controlplane.apiserver import APIServer
from labkit.controlplane.controllers.manager import ControllerManager
from labkit.controlplane.scheduler.scheduler import Scheduler
from labkit.node.kubelet.hollow import HollowNodes


def test_daemonset_follows_a_node_added_and_a_node_removed():
    with APIServer("memory") as api, tempfile.NamedTemporaryFile(suffix=".kubeconfig") as kc:
        write_kubeconfig(kc.name, api.url)

        async def scenario():
            client = Client(kc.name)
            first = HollowNodes(client, 2, prefix="a", lease_interval=1)
            later = HollowNodes(client, 1, prefix="b", lease_interval=1)
            manager = ControllerManager(client, ("daemonset", "garbagecollector"))
            tasks = [asyncio.create_task(Scheduler(client).run()), asyncio.create_task(manager.run())]
            try:
                await first.start()
                await client.create("daemonsets", daemonset("agent"))

                async def placed():
                    pods = (await client.list("pods", "default", label_selector="app=agent"))["items"]
                    running = {p["spec"].get("nodeName") for p in pods
                               if (p.get("status") or {}).get("phase") == "Running"
                               and not p["metadata"].get("deletionTimestamp")}
                    ds = await client.get("daemonsets", "agent", "default")
                    return running, ds["status"], pods

                async def on(nodes: set[str]):
                    running, status, pods = await placed()
                    return running == nodes and status.get("numberReady") == len(nodes) and (running, status, pods)

                two = {"a-00000", "a-00001"}
                _, status, pods = await eventually(lambda: on(two), 60, "a daemon pod on each of the 2 nodes")
                assert status["desiredNumberScheduled"] == 2 and status["currentNumberScheduled"] == 2
                affinity = pods[0]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                assert affinity["nodeSelectorTerms"][0]["matchFields"][0]["key"] == "metadata.name"

                await later.start()  # a node joins
                await eventually(lambda: on(two | {"b-00000"}), 60, "a daemon pod on the node that joined")

                await later.stop()  # a node leaves: its kubelet stops and the Node object is deleted
                await client.delete("nodes", "b-00000")
                _, status, _ = await eventually(lambda: on(two), 60, "the removed node's daemon pod gone")
                remaining = (await client.list("pods", "default", label_selector="app=agent"))["items"]
                return status, remaining
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await first.stop()
                await client.close()

        status, remaining = asyncio.run(scenario())
    assert status["desiredNumberScheduled"] == 2 and status["numberMisscheduled"] == 0
    assert sorted(p["spec"]["nodeName"] for p in remaining) == ["a-00000", "a-00001"], \
        "the pod of the deleted node is removed, not left Terminating"
