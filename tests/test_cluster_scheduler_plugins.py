"""Scheduler plugins on hand-made nodes: the verdicts a user reads in `why` and FailedScheduling."""

from labkit.controlplane.scheduler import NodeTable, simulate
from labkit.controlplane.scheduler.framework import Framework


def node(name, cpu="4", mem="8Gi", pods="110", labels=None, taints=None, unschedulable=False, **extra):
    alloc = {"cpu": cpu, "memory": mem, "pods": pods, **extra}
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": {"taints": taints or [], "unschedulable": unschedulable},
            "status": {"allocatable": alloc, "capacity": alloc}}


def pod(name, cpu=None, mem=None, node_name=None, **spec):
    req = {}
    if cpu:
        req["cpu"] = cpu
    if mem:
        req["memory"] = mem
    c = {"name": "c", "image": "busybox", "resources": {"requests": req}}
    s = {"containers": [c], **spec}
    if node_name:
        s["nodeName"] = node_name
    return {"metadata": {"name": name, "namespace": "default"}, "spec": s}


def test_least_allocated_prefers_the_emptier_node():
    nodes = [node("a"), node("b")]
    busy = pod("busy", cpu="3", mem="6Gi", node_name="a")
    d = simulate(nodes, [busy], pod("new", cpu="500m", mem="512Mi"))
    assert d.node == "b"
    row = {r["node"]: r for r in d.table()}
    assert row["b"]["NodeResourcesLeastAllocated"] > row["a"]["NodeResourcesLeastAllocated"]
    assert "chosen" in d.why("b")


def test_insufficient_cpu_and_taints_make_the_kubernetes_message():
    nodes = [
        node("small", cpu="1"),
        node("t1", taints=[{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]),
        node("t2", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
    ]
    d = simulate(nodes, [], pod("big", cpu="2"))
    assert d.node is None
    msg = d.message()
    assert msg.startswith("0/3 nodes are available: ")
    assert "1 Insufficient cpu" in msg
    assert "1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }" in msg
    assert "1 node(s) had untolerated taint {dedicated: gpu}" in msg


def test_toleration_lets_the_pod_onto_a_tainted_node():
    nodes = [node("t", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])]
    tol = [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]
    assert simulate(nodes, [], pod("p", tolerations=tol)).node == "t"
    assert simulate(nodes, [], pod("q", tolerations=[{"operator": "Exists"}])).node == "t"
    assert simulate(nodes, [], pod("r")).node is None


def test_node_selector_and_required_affinity():
    nodes = [node("a", labels={"disk": "ssd", "zone": "z1"}), node("b", labels={"disk": "hdd", "zone": "z2"})]
    assert simulate(nodes, [], pod("p", nodeSelector={"disk": "hdd"})).node == "b"
    none = simulate(nodes, [], pod("p", nodeSelector={"disk": "nvme"}))
    assert none.node is None and "2 node(s) didn't match Pod's node affinity/selector" in none.message()
    aff = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["z2"]}]}]}}}
    assert simulate(nodes, [], pod("p", affinity=aff)).node == "a"
    ex = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}]}}}
    assert simulate(nodes, [], pod("p", affinity=ex)).node is None


def test_extended_resources_pods_limit_and_cordon():
    nodes = [node("cpu-only"), node("gpu", **{"nvidia.com/gpu": "2"})]
    p = pod("train")
    p["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
    d = simulate(nodes, [], p)
    assert d.node == "gpu"
    assert "Insufficient nvidia.com/gpu" in d.why("cpu-only")
    full = [node("one", pods="1")]
    assert "Too many pods" in simulate(full, [pod("x", node_name="one")], pod("y")).message()
    assert "node(s) were unschedulable" in simulate([node("c", unschedulable=True)], [], pod("z")).message()


def test_node_name_pins_and_table_shows_every_plugin():
    nodes = [node("a"), node("b"), node("c")]
    d = simulate(nodes, [], pod("p", nodeName="c"))
    assert d.node == "c"
    rows = d.table()
    assert [r["node"] for r in rows] == ["a", "b", "c"]
    assert rows[0]["NodeName"] == "node(s) didn't match the requested node name"
    assert set(rows[0]) >= {"NodeUnschedulable", "TaintToleration", "NodeAffinity", "NodeResourcesFit",
                            "NodeResourcesBalancedAllocation", "total"}
    assert "<table>" in d._repr_html_()


def test_assumed_pods_fill_nodes_in_turn_and_removal_frees_them():
    t = NodeTable(capacity=2)  # grows as nodes arrive
    for i in range(5):
        t.upsert_node(node(f"n{i}", cpu="1"))
    fw = Framework()
    placed = []
    for i in range(5):
        p = pod(f"p{i}", cpu="1")
        d = fw.schedule_one(t, p)
        placed.append(d.node)
        t.add_pod(f"default/p{i}", d.node, p)
    assert sorted(placed) == [f"n{i}" for i in range(5)]
    assert fw.schedule_one(t, pod("extra", cpu="1")).node is None
    t.remove_pod("default/p3")
    assert fw.schedule_one(t, pod("extra", cpu="1")).node == placed[3]
    t.remove_node("n0")
    assert len(t) == 4


def test_big_clusters_search_a_rotating_window_but_never_miss_a_fit():
    t = NodeTable()
    for i in range(400):
        t.upsert_node(node(f"n{i:03d}", cpu="1"))
    fw = Framework()
    assert fw.feasible_to_find(400) == 187 and fw.feasible_to_find(50) == 50
    d = fw.schedule_one(t, pod("p0", cpu="1"))
    assert len(d.names) == 187  # a window, not all 400 nodes
    placed = set()
    for i in range(400):  # every node can take exactly one pod: all must be found
        p = pod(f"p{i}", cpu="1")
        d = fw.schedule_one(t, p)
        assert d.node is not None and d.node not in placed
        placed.add(d.node)
        t.add_pod(f"default/p{i}", d.node, p)
    last = fw.schedule_one(t, pod("extra", cpu="1"))
    assert last.node is None and last.message().startswith("0/400 nodes are available: 400 Insufficient cpu")
