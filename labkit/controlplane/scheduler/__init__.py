"""labkit's kube-scheduler.

* :mod:`.nodetable` - nodes as numpy columns (allocatable, requested, labels, taints)
* :mod:`.plugins`   - filter and score plugins, vectorised over nodes
* :mod:`.topologyspread` - PodTopologySpread: spread a workload over zones (maxSkew, DoNotSchedule|ScheduleAnyway)
* :mod:`.framework` - ``schedule_one(table, pod) -> Decision``: pure, usable from a lab
* :mod:`.decision`  - why this node: every plugin's verdict per node, the FailedScheduling text
* :mod:`.scheduler` - the process: informers, queue, assume, concurrent binds, Events
"""

from labkit.client.pods import is_pod_terminal
from labkit.controlplane.scheduler.decision import Decision
from labkit.controlplane.scheduler.framework import Framework
from labkit.controlplane.scheduler.nodetable import NodeTable


def simulate(nodes: list[dict], pods: list[dict], pod: dict, framework: Framework | None = None) -> Decision:
    """Where would ``pod`` go on these nodes, already running ``pods``? (No API server needed.)"""
    table = NodeTable()
    for n in nodes:
        table.upsert_node(n)
    for p in pods:
        node = (p.get("spec") or {}).get("nodeName")
        if node and not is_pod_terminal(p):
            md = p.get("metadata", {})
            table.add_pod(f"{md.get('namespace', 'default')}/{md.get('name')}", node, p)
    return (framework or Framework()).schedule_one(table, pod)


__all__ = ["Decision", "Framework", "NodeTable", "simulate"]
