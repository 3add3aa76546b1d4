"""Preemption (kube-scheduler's DefaultPreemption PostFilter): when a pod fits nowhere, find a node
where deleting lower-priority pods would make room, and the fewest, least important such pods.

For each node that failed *only* for resources (a taint or a selector cannot be fixed by
deleting pods), every pod of lower priority is taken away in simulation; if the preemptor then
fits, victims are given back one at a time, most important first, as long as it still fits. Of
the nodes left, the one whose most important victim has the lowest priority wins, then the
smallest sum of victim priorities, then the fewest victims, then the first by name (labkit's
tie-break). A pod with ``preemptionPolicy: Never`` never preempts. PodDisruptionBudgets are not
considered (labkit has none).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labkit.controlplane.scheduler.decision import Decision
from labkit.controlplane.scheduler.nodetable import NodeTable
from labkit.controlplane.scheduler.plugins import PodInfo

RESOURCE_FILTER = "NodeResourcesFit"


@dataclass(frozen=True)
class Preemption:
    node: str
    victims: list[str]  # pod keys, most important first

    def message(self, pod_key: str) -> str:
        return f"{pod_key} preempts {len(self.victims)} pod(s) on {self.node}: {', '.join(self.victims)}"


def priority_of(pod: dict) -> int:
    return int((pod.get("spec") or {}).get("priority") or 0)


def _fits(table: NodeTable, slot: int, needs: dict[str, int], freed: dict[str, int]) -> bool:
    for r, need in needs.items():
        row = table.rows.get(r)
        if row is None:
            return False
        if table.alloc[row, slot] - table.req[row, slot] + freed.get(r, 0) < need:
            return False
    return True


def find(table: NodeTable, p: PodInfo, d: Decision, priorities: dict[str, int],
         leaving: frozenset[str] | set[str] = frozenset()) -> Preemption | None:
    """Where preempting would let ``p`` run, and whom; None when no deletion of lower-priority pods helps.

    ``leaving``: pods already being deleted. They still hold their resources until they are gone,
    so they count as used, but they are no victims: deleting them again frees nothing more."""
    spec = p.spec
    if spec.get("preemptionPolicy") == "Never":
        return None
    mine = int(spec.get("priority") or 0)
    needs = {r: v for r, v in p.requests.items() if v > 0}
    others_ok = np.ones(len(d.names), dtype=bool)
    for name, mask, _ in d.filters:
        if name != RESOURCE_FILTER:
            others_ok &= np.asarray(mask, dtype=bool)[d.slots]
    best: tuple[tuple, Preemption] | None = None
    for j in np.flatnonzero(others_ok):
        node = d.names[j]
        slot = table.slot.get(node)
        if slot is None:
            continue
        lower = sorted(((priorities.get(k, 0), k, req) for k, (s, req, _) in table.pods.items()
                        if s == slot and priorities.get(k, 0) < mine and not k.startswith("nominated:")
                        and k not in leaving),
                       key=lambda x: (-x[0], x[1]))  # most important first: they are reprieved first
        freed: dict[str, int] = {}
        for _, _, req in lower:
            for r, v in req.items():
                freed[r] = freed.get(r, 0) + v
        if not lower or not _fits(table, slot, needs, freed):
            continue
        victims = []
        for prio, key, req in lower:  # give back whoever is not needed
            trial = {r: freed.get(r, 0) - req.get(r, 0) for r in freed}
            if _fits(table, slot, needs, trial):
                freed = trial
            else:
                victims.append((prio, key))
        rank = (max(v[0] for v in victims), sum(v[0] for v in victims), len(victims), node)
        if best is None or rank < best[0]:
            best = (rank, Preemption(node, [k for _, k in victims]))
    return best[1] if best else None
