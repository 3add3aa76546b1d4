"""The scheduling cycle for one pod: filter every node, score the survivors, pick the best.

Pure and synchronous: it reads a :class:`NodeTable` and returns a :class:`Decision`, so a lab
can ask "where would this pod go, and why?" without a cluster, and the scheduler process
calls the very same function.
"""

from __future__ import annotations

import numpy as np

from labkit.controlplane.scheduler.decision import Decision
from labkit.controlplane.scheduler.nodetable import NodeTable
from labkit.controlplane.scheduler.plugins import (
    DEFAULT_FILTERS,
    DEFAULT_SCORES,
    FilterPlugin,
    PodInfo,
    ScorePlugin,
)


class Framework:
    def __init__(self, filters: list[FilterPlugin] | None = None,
                 scores: list[tuple[ScorePlugin, int]] | None = None):
        self.filters = list(DEFAULT_FILTERS if filters is None else filters)
        self.scores = list(DEFAULT_SCORES if scores is None else scores)

    def schedule_one(self, table: NodeTable, pod: dict | PodInfo) -> Decision:
        """Run every filter and score plugin over all nodes; ties go to the first node by name."""
        p = pod if isinstance(pod, PodInfo) else PodInfo.of(pod)
        alive = table.alive
        slots, names = table.ordered()
        feasible = alive.copy()
        verdicts = []
        for f in self.filters:
            ok, why = f.filter(table, p)
            verdicts.append((f.name, ok, why))
            feasible &= ok
        total = np.zeros(table.cap, dtype=np.float64)
        scored = []
        if feasible.any():
            for s, w in self.scores:
                arr = s.score(table, p)
                scored.append((s.name, w, arr))
                total += w * np.rint(arr)
        node = None
        cand = slots[feasible[slots]]
        if len(cand):
            best = cand[int(np.argmax(total[cand]))]  # argmax returns the first maximum: name order
            node = table.names[best]
        return Decision(p.key, node, names, verdicts, scored, slots, total)
