"""Priority and preemption as Borg has them: a more important pod takes the room of less important
ones (the least important, as few as needed), a pod with preemptionPolicy Never waits instead, and
equal priorities never preempt each other. Also NodeResourcesFit's scoring strategies: spread or pack."""

from __future__ import annotations

import pytest
from kubernetes import client
from support.cluster import wait_for

from labkit.cluster import Cluster
from labkit.controlplane.scheduler import NodeTable
from labkit.controlplane.scheduler.framework import Framework
from labkit.controlplane.scheduler.plugins import PodInfo, scores_for
from labkit.controlplane.scheduler.preemption import find


def _node(name: str, cpu: str = "2") -> dict:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"allocatable": {"cpu": cpu, "memory": "4Gi", "pods": "110"}}}


def _pod(name: str, cpu: str = "1", priority: int = 0, policy: str | None = None) -> dict:
    spec: dict = {"priority": priority, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}
    if policy:
        spec["preemptionPolicy"] = policy
    return {"metadata": {"name": name, "namespace": "default"}, "spec": spec}


def test_victims_are_the_fewest_least_important_pods_on_the_cheapest_node() -> None:
    t = NodeTable()
    for n in ("a", "b"):
        t.upsert_node(_node(n))
    prios = {}
    for name, node, prio in (("a-low", "a", 10), ("a-mid", "a", 50), ("b-mid1", "b", 50), ("b-mid2", "b", 50)):
        t.add_pod(f"default/{name}", node, _pod(name))
        prios[f"default/{name}"] = prio
    fw = Framework()
    big = PodInfo.of(_pod("big", priority=100))
    d = fw.schedule_one(t, big)
    assert d.node is None
    pre = find(t, big, d, prios)
    assert pre is not None and pre.node == "a" and pre.victims == ["default/a-low"]  # a-mid is reprieved
    never = PodInfo.of(_pod("polite", priority=100, policy="Never"))
    assert find(t, never, fw.schedule_one(t, never), prios) is None
    peer = PodInfo.of(_pod("peer", priority=50))  # equal priority never preempts
    assert find(t, peer, fw.schedule_one(t, peer), {k: v for k, v in prios.items() if k != "default/a-low"}
                | {"default/a-low": 50}) is None


@pytest.mark.parametrize(("strategy", "spread"), [("LeastAllocated", True), ("MostAllocated", False),
                                                  ("RequestedToCapacityRatio", False)])
def test_scoring_strategy_spreads_or_packs(strategy: str, spread: bool) -> None:
    t = NodeTable()
    for n in ("n1", "n2", "n3"):
        t.upsert_node(_node(n, cpu="4"))
    fw = Framework(scores=scores_for(strategy))
    placed = []
    for i in range(3):
        p = _pod(f"p{i}")
        d = fw.schedule_one(t, p)
        placed.append(d.node)
        t.add_pod(f"default/p{i}", d.node, p)
    assert (len(set(placed)) == 3) is spread, placed


def test_preemption_through_the_api_nominates_a_node_and_deletes_the_victim() -> None:
    with Cluster(nodes=1, store="memory", processes=False, node_cpu="2") as c:
        core, sched = c.core(), client.SchedulingV1Api(c.client())
        sched.create_priority_class({"metadata": {"name": "batch"}, "value": 100})
        sched.create_priority_class({"metadata": {"name": "production"}, "value": 10000})
        sched.create_priority_class({"metadata": {"name": "production-polite"}, "value": 10000,
                                     "preemptionPolicy": "Never"})

        def make(name: str, cls: str) -> None:
            core.create_namespaced_pod("default", {"metadata": {"name": name}, "spec": {
                "priorityClassName": cls, "terminationGracePeriodSeconds": 0,
                "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                                "resources": {"requests": {"cpu": "1"}}}]}})

        make("batch-1", "batch")
        make("batch-2", "batch")
        wait_for(lambda: all(core.read_namespaced_pod(n, "default").spec.node_name for n in ("batch-1", "batch-2")),
                 what="the batch pods placed")
        make("polite", "production-polite")
        make("web", "production")
        wait_for(lambda: core.read_namespaced_pod("web", "default").status.phase == "Running", timeout=60,
                 what="the production pod running after preempting a batch pod")
        left = {p.metadata.name for p in core.list_namespaced_pod("default").items if not p.metadata.deletion_timestamp}
        assert "web" in left and len(left & {"batch-1", "batch-2"}) == 1
        assert core.read_namespaced_pod("polite", "default").spec.node_name is None  # Never: it waits
        events = core.list_namespaced_event("default").items
        assert any(e.reason == "Preempted" and "on node node-1" in (e.message or "") for e in events)
