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

MIN_FEASIBLE = 100


class Framework:
    def __init__(self, filters: list[FilterPlugin] | None = None,
                 scores: list[tuple[ScorePlugin, int]] | None = None):
        self._next_start = 0
        self.filters = list(DEFAULT_FILTERS if filters is None else filters)
        self.scores = list(DEFAULT_SCORES if scores is None else scores)

    def schedule_one(self, table: NodeTable, pod: dict | PodInfo) -> Decision:
        """Filter, score, pick; ties go to the first node by name.

        Like kube-scheduler's percentageOfNodesToScore, a big cluster is not searched whole for
        every pod: filters run on a window of nodes (at least 100, and 50% shrinking to 5% as the
        cluster grows) that rotates from pod to pod, and only when that window has too few
        feasible nodes is the rest searched too. Clusters of up to 100 nodes are always searched
        whole, so a lab's ``why`` table covers every node.
        """
        p = pod if isinstance(pod, PodInfo) else PodInfo.of(pod)
        slots_all, names_all = table.ordered()
        n = len(slots_all)
        want = self.feasible_to_find(n)
        if want >= n:
            positions = np.arange(n)
        else:
            start = self._next_start % n
            positions = (start + np.arange(want)) % n
        idx = slots_all[positions]
        verdicts, feasible = self._filter(table, p, idx)
        if want < n and int(feasible.sum()) < want:  # window too thin: search everything
            positions = np.arange(n)
            idx = slots_all
            verdicts, feasible = self._filter(table, p, idx)
        self._next_start = (int(positions[-1]) + 1) if len(positions) else 0
        names = [names_all[k] for k in positions] if len(positions) != n else names_all
        total = np.zeros(len(idx), dtype=np.float64)
        scored = []
        if feasible.any():
            for s, w in self.scores:
                arr = s.score(table, p, idx)
                if arr is None:  # the plugin has no opinion on this pod: 0 everywhere, nothing to add
                    scored.append((s.name, w, np.zeros(len(idx))))
                    continue
                scored.append((s.name, w, arr))
                total += w * np.rint(arr)
        node = None
        cand = np.flatnonzero(feasible)
        if len(cand):
            best = cand[int(np.argmax(total[cand]))]  # argmax returns the first maximum: name order
            node = names[best]
        return Decision(p.key, node, names, verdicts, scored, np.arange(len(idx)), total)

    def _filter(self, table: NodeTable, p: PodInfo, idx: np.ndarray):
        feasible = np.ones(len(idx), dtype=bool)
        verdicts = []
        for f in self.filters:
            ok, why = f.filter(table, p, idx)
            verdicts.append((f.name, ok, why))
            feasible &= ok
        return verdicts, feasible

    @staticmethod
    def feasible_to_find(n: int) -> int:
        """kube-scheduler's numFeasibleNodesToFind with the adaptive default percentage."""
        if n <= MIN_FEASIBLE:
            return n
        pct = max(5.0, 50.0 - n / 125.0)
        return max(MIN_FEASIBLE, int(n * pct / 100))
