"""PodTopologySpread in labkit's scheduler, in-process and cheap: zones as node labels, maxSkew as a
filter (DoNotSchedule) or a preference (ScheduleAnyway), which pods count, and what a lost zone does."""

from __future__ import annotations

from labkit.controlplane.scheduler import NodeTable, simulate
from labkit.controlplane.scheduler.framework import Framework
from labkit.controlplane.scheduler.topologyspread import ZONE

UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}


def node(name: str, zone: str | None, taints: list | None = None) -> dict:
    labels = {"kubernetes.io/hostname": name} | ({ZONE: zone} if zone else {})
    return {"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints or []},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}


def pod(name: str, on: str | None = None, when: str = "DoNotSchedule", ns: str = "default", app: str = "web",
        deleting: bool = False, **constraint) -> dict:
    c = {"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": when, "labelSelector": {"matchLabels": {"app": "web"}}}
    md: dict = {"name": name, "namespace": ns, "labels": {"app": app}}
    if deleting:
        md["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": md, "spec": {"nodeName": on, "containers": [{"name": "c"}],
                                     "topologySpreadConstraints": [c | constraint]}}


ZONES = [node("a1", "a"), node("a2", "a"), node("b1", "b"), node("c1", "c")]


def test_do_not_schedule_puts_the_next_pod_in_the_emptiest_zone_and_says_why_not_elsewhere():
    d = simulate(ZONES, [pod("w1", "a1"), pod("w2", "b1")], pod("new"))
    assert d.node == "c1"
    assert d.why("a2") == "a2: filtered out by PodTopologySpread (node(s) didn't match pod topology spread constraints)"
    # maxSkew 2 allows a second pod in zone a, which LeastAllocated then prefers (a2 is empty)
    assert simulate(ZONES, [pod("w1", "a1"), pod("w2", "b1")], pod("new", maxSkew=2)).node == "a2"
    full = simulate(ZONES, [pod("w1", "a1"), pod("w2", "b1")], pod("new"), Framework())
    assert "PodTopologySpread score" in full.table()[0]


def test_a_node_without_the_zone_label_is_never_feasible_for_a_hard_constraint():
    d = simulate([node("bare", None)], [], pod("p"))
    assert d.node is None
    assert d.message() == ("0/1 nodes are available: 1 node(s) didn't match pod topology spread constraints "
                           "(missing required label).")


def test_schedule_anyway_prefers_the_emptiest_zone_but_never_refuses():
    pods = [pod("w1", "a1"), pod("w2", "a2"), pod("w3", "b1"), pod("w4", "c1")]
    d = simulate(ZONES, pods, pod("soft", when="ScheduleAnyway"))
    assert d.node in ("b1", "c1") and len(d.feasible) == 4
    rows = {r["node"]: r for r in d.table()}
    # kube-scheduler's normalisation: 100 x (max + min - mine) / max, so zone a (2 pods) scores 50
    assert rows["a1"]["PodTopologySpread score"] == 50 and rows[d.node]["PodTopologySpread score"] == 100
    hard = simulate([node("a1", "a")], [pod("w1", "a1")], pod("hard"))  # one domain: skew 1 - 1 + 1 = 1
    assert hard.node == "a1"


def test_only_matching_live_pods_of_the_same_namespace_count():
    others = [pod("x1", "a1", app="db"), pod("x2", "a1", ns="other"), pod("x3", "a1", deleting=True)]
    assert simulate(ZONES, [*others, pod("w1", "b1"), pod("w2", "c1")], pod("new")).node in ("a1", "a2")
    t = NodeTable()
    for n in ZONES:
        t.upsert_node(n)
    t.add_pod("default/w1", "a1", pod("w1", "a1"))
    t.add_pod("default/w1", "a1", pod("w1", "a1", deleting=True))  # the informer's update: now terminating
    t.add_pod("default/w2", "b1", pod("w2", "b1"))
    t.add_pod("default/w3", "c1", pod("w3", "c1"))
    assert Framework().schedule_one(t, pod("new")).feasible == ["a1", "a2"]
    no_selector = pod("free", labelSelector=None)  # a constraint with no selector counts no pods
    assert simulate(ZONES, [pod("w1", "a1"), pod("w2", "b1")], no_selector).node in ("a2", "c1")


def test_a_lost_zone_blocks_hard_spread_unless_its_tainted_nodes_are_left_out():
    down = [node("a1", "a", [UNREACHABLE]), node("a2", "a", [UNREACHABLE]), node("b1", "b"), node("c1", "c")]
    pods = [pod("w1", "b1"), pod("w2", "c1")]  # zone a's pods were evicted
    stuck = simulate(down, pods, pod("replacement"))
    assert stuck.node is None
    assert "2 node(s) didn't match pod topology spread constraints" in stuck.message()
    assert simulate(down, pods, pod("replacement", nodeTaintsPolicy="Honor")).node in ("b1", "c1")
    assert simulate(down, pods, pod("replacement", when="ScheduleAnyway")).node in ("b1", "c1")


def test_min_domains_counts_missing_domains_as_empty():
    two = [node("a1", "a"), node("b1", "b")]
    pods = [pod("w1", "a1"), pod("w2", "b1")]
    assert simulate(two, pods, pod("p")).node == "a1"
    assert simulate(two, pods, pod("p", minDomains=3)).node is None  # a third zone is missing: global min is 0
