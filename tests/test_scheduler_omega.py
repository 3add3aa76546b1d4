"""Omega's shared-state scheduling with labkit's scheduler: two schedulers over one cluster, each with
its own copy of the state, bind optimistically. Every pod ends up bound exactly once; the losers'
409s are counted, and a scheduler leaves other schedulers' pods alone unless told (lab-only) to contend."""

from __future__ import annotations

import asyncio

import pytest

from labkit.client import Client
from labkit.cluster import Cluster
from labkit.controlplane.scheduler.plugins import PodInfo
from labkit.controlplane.scheduler.scheduler import Scheduler

PODS = 40


def fake_node(name: str) -> dict:  # a Node object only: binding needs no kubelet
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"allocatable": {"cpu": "64", "memory": "64Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def pod(name: str, scheduler: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"schedulerName": scheduler, "containers": [{"name": "c", "image": "busybox",
                                                                 "resources": {"requests": {"cpu": "100m"}}}]}}


@pytest.fixture(scope="module")
def cluster():
    with Cluster(nodes=0, processes=False, store="memory", node_grace=600) as c:
        yield c


async def contend(kubeconfig: str, names: list[str]) -> tuple[Scheduler, Scheduler, dict]:
    ca, cb, cl = Client(kubeconfig), Client(kubeconfig), Client(kubeconfig)
    try:
        a = Scheduler(ca, "omega-a", also_for=["omega-b"], events=False)
        b = Scheduler(cb, "omega-b", also_for=["omega-a"], events=False)
        runs = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
        for _ in range(300):
            items = (await cl.list("pods", "default"))["items"]
            mine = [p for p in items if p["metadata"]["name"] in names]
            if all((p.get("spec") or {}).get("nodeName") for p in mine) and a.bound + b.bound >= len(names):
                break
            await asyncio.sleep(0.1)
        for t in runs:
            t.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        return a, b, {p["metadata"]["name"]: p["spec"].get("nodeName") for p in mine}
    finally:
        for c in (ca, cb, cl):
            await c.close()


def test_two_schedulers_bind_every_pod_exactly_once_and_count_their_conflicts(cluster):
    core = cluster.core()
    for n in ("n1", "n2", "n3"):
        core.create_node(fake_node(n))
    names = [f"p{i}" for i in range(PODS)]
    for i, name in enumerate(names):  # created before the schedulers start: both see every pod at once
        core.create_namespaced_pod("default", pod(name, "omega-a" if i % 2 else "omega-b"))
    core.create_namespaced_pod("default", pod("elsewhere", "someone-else"))
    a, b, placed = asyncio.run(contend(cluster.kubeconfig, names))
    assert sorted(placed) == sorted(names) and all(placed.values())
    assert a.bound + b.bound == PODS  # each pod's bind succeeded once, whoever won it
    assert a.conflicts + b.conflicts >= 1  # both took the same pods: some binds lost the race
    for s in (a, b):
        assert s.conflicts == s.lost + s.retries
        assert s.counters()["conflicts"] == s.conflicts
    assert not core.read_namespaced_pod("elsewhere", "default").spec.node_name  # not theirs: left alone


def test_a_conflict_on_a_pod_still_unplaced_is_retried_on_fresh_state(cluster):
    """The loser of a bind reads the pod again: placed by another, it stops; still unplaced, it decides again."""
    core = cluster.core()
    core.create_namespaced_pod("default", pod("again", "omega-c"))

    async def conflict_twice() -> Scheduler:
        cl = Client(cluster.kubeconfig)
        try:
            s = Scheduler(cl, "omega-c", events=False)
            stale = await cl.get("pods", "again", "default")
            p = PodInfo.of(stale)
            await s._after_conflict(stale, p, "n1")  # nobody has placed it: retry
            assert s.queued == {p.key}
            await s._bind_call(stale, "n2")  # another writer places it
            await s._after_conflict(stale, p, "n1")  # now the fresh read ends the retry
            return s
        finally:
            await cl.close()

    s = asyncio.run(conflict_twice())
    assert s.counters() == {"bound": 0, "unschedulable": 0, "preemptions": 0, "conflicts": 2, "retries": 1,
                                 "lost": 1}
