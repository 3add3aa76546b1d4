"""Filter and score plugins, each one vectorised over every node of a :class:`NodeTable`.

Names and failure messages follow kube-scheduler's in-tree plugins, so a FailedScheduling
Event reads the same as on a real cluster. A filter returns a boolean "passes" mask plus a
function that explains a failing node; a score returns 0..100 per node (higher is better).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from labkit.client.pods import pod_requests
from labkit.client.taints import tolerates
from labkit.controlplane.scheduler.nodetable import NodeTable
from labkit.controlplane.scheduler.podspec import nonzero_requests, required_terms

Reasons = Callable[[int], list[str]]


@dataclass
class PodInfo:
    """The parts of a pod the plugins read, parsed once per scheduling attempt."""

    key: str
    pod: dict
    requests: dict[str, int] = field(default_factory=dict)
    nonzero: tuple[int, int] = (0, 0)
    cache: dict = field(default_factory=dict)

    @classmethod
    def of(cls, pod: dict) -> PodInfo:
        md = pod.get("metadata", {})
        return cls(f"{md.get('namespace', 'default')}/{md.get('name')}", pod, pod_requests(pod), nonzero_requests(pod))

    @property
    def spec(self) -> dict:
        return self.pod.get("spec") or {}


class FilterPlugin:
    name = "?"

    def filter(self, t: NodeTable, p: PodInfo, idx: np.ndarray) -> tuple[np.ndarray, Reasons]:
        """Verdicts for the node slots ``idx``; ``reasons(j)`` explains position ``j`` of ``idx``."""
        raise NotImplementedError


class ScorePlugin:
    name = "?"

    def score(self, t: NodeTable, p: PodInfo, idx: np.ndarray) -> np.ndarray | None:
        """0..100 for the node slots ``idx``; None when the plugin has nothing to say about this pod."""
        raise NotImplementedError


# ---------------------------------------------------------------------------- filters
class NodeUnschedulable(FilterPlugin):
    """A cordoned node (spec.unschedulable) takes no new pods unless the pod tolerates that."""

    name = "NodeUnschedulable"

    def filter(self, t: NodeTable, p: PodInfo, idx: np.ndarray) -> tuple[np.ndarray, Reasons]:
        taint = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
        if tolerates(p.spec.get("tolerations") or [], taint):
            return np.ones(len(idx), dtype=bool), lambda j: []
        return ~t.unschedulable[idx], lambda j: ["node(s) were unschedulable"]


class NodeName(FilterPlugin):
    """spec.nodeName set by the user pins the pod to that node."""

    name = "NodeName"

    def filter(self, t: NodeTable, p: PodInfo, idx: np.ndarray) -> tuple[np.ndarray, Reasons]:
        want = p.spec.get("nodeName")
        if not want:
            return np.ones(len(idx), dtype=bool), lambda j: []
        ok = idx == t.slot.get(want, -1)
        return ok, lambda j: ["node(s) didn't match the requested node name"]


class TaintToleration(FilterPlugin):
    """Every NoSchedule/NoExecute taint on the node must be tolerated by the pod."""

    name = "TaintToleration"

    def filter(self, t: NodeTable, p: PodInfo, idx: np.ndarray) -> tuple[np.ndarray, Reasons]:
        tol = p.spec.get("tolerations") or []
        bad: list[str | None] = []
        for taints in t.taint_sets:  # one check per distinct set of taints, not per node
            first = None
            for key, value, effect in taints:
                if effect in ("NoSchedule", "NoExecute") and not tolerates(tol, {"key": key, "value": value,
                                                                                 "effect": effect}):
                    first = f"node(s) had untolerated taint {{{key}: {value}}}"
                    break
            bad.append(first)
        group_ok = np.array([b is None for b in bad], dtype=bool)
        groups = t.taint_group[idx]
        return group_ok[groups], lambda j: [bad[groups[j]] or ""]


class NodeAffinity(FilterPlugin):
    """spec.nodeSelector (every label must match) and required node affinity (any term matches)."""

    name = "NodeAffinity"

    def filter(self, t: NodeTable, p: PodInfo, idx: np.ndarray) -> tuple[np.ndarray, Reasons]:
        ok = np.ones(len(idx), dtype=bool)
        for key, value in (p.spec.get("nodeSelector") or {}).items():
            codes, vocab = t.label_codes(key)
            ok &= codes[idx] == vocab.get(value, -2)
        terms = required_terms(p.pod)
        if terms:
            any_term = np.zeros(len(idx), dtype=bool)
            for term in terms:
                m = np.ones(len(idx), dtype=bool)
                for expr in term.get("matchExpressions") or []:
                    m &= _match_expression(t, expr)[idx]
                for expr in term.get("matchFields") or []:
                    if expr.get("key") == "metadata.name":
                        names = np.array([t.names[i] or "" for i in idx], dtype=object)
                        hit = np.isin(names, expr.get("values") or [])
                        m &= hit if expr.get("operator") == "In" else ~hit
                any_term |= m
            ok &= any_term
        return ok, lambda j: ["node(s) didn't match Pod's node affinity/selector"]


def _match_expression(t: NodeTable, expr: dict) -> np.ndarray:
    key, op, values = expr.get("key", ""), expr.get("operator", "In"), expr.get("values") or []
    codes, vocab = t.label_codes(key)
    if op in ("In", "NotIn"):
        hit = np.isin(codes, [vocab[v] for v in values if v in vocab])
        return hit if op == "In" else ~hit
    if op == "Exists":
        return codes >= 0
    if op == "DoesNotExist":
        return codes < 0
    if op in ("Gt", "Lt"):
        try:
            bound = int(values[0])
        except (IndexError, ValueError):
            return np.zeros(t.cap, dtype=bool)
        out = np.zeros(t.cap, dtype=bool)
        for i, v in enumerate(t.label_values(key)):
            if v is not None and v.lstrip("-").isdigit():
                out[i] = int(v) > bound if op == "Gt" else int(v) < bound
        return out
    return np.zeros(t.cap, dtype=bool)


class NodeResourcesFit(FilterPlugin):
    """Requests (cpu, memory, pods, extended resources like nvidia.com/gpu) must fit what is left."""

    name = "NodeResourcesFit"

    def filter(self, t: NodeTable, p: PodInfo, idx: np.ndarray) -> tuple[np.ndarray, Reasons]:
        short: list[tuple[str, np.ndarray]] = []
        ok = np.ones(len(idx), dtype=bool)
        for r, need in p.requests.items():
            if need <= 0:
                continue
            row = t.rows.get(r)
            fits = (t.alloc[row, idx] - t.req[row, idx] >= need) if row is not None \
                else np.zeros(len(idx), dtype=bool)
            ok &= fits
            short.append(("Too many pods" if r == "pods" else f"Insufficient {r}", ~fits))
        return ok, lambda j: [text for text, miss in short if miss[j]]


# ---------------------------------------------------------------------------- scores
def _fraction(t: NodeTable, p: PodInfo, idx: np.ndarray) -> np.ndarray:
    """(2, len(idx)) share of cpu and memory requested if the pod landed there (cached per attempt)."""
    cached = p.cache.get("fraction")
    if cached is not None and cached[0] is idx:
        return cached[1]
    frac = (t.nz[:, idx] + np.array(p.nonzero, dtype=np.float64)[:, None]) * t.inv_alloc[:, idx]
    np.minimum(frac, 1.0, out=frac)
    none = t.no_alloc[:, idx]
    if none.any():
        frac[none] = 1.0
    p.cache["fraction"] = (idx, frac)
    return frac


class NodeResourcesLeastAllocated(ScorePlugin):
    """Prefer the node with the most room left: mean over cpu and memory of free share x 100."""

    name = "NodeResourcesLeastAllocated"

    def score(self, t: NodeTable, p: PodInfo, idx: np.ndarray) -> np.ndarray:
        f = _fraction(t, p, idx)
        return 100.0 - (f[0] + f[1]) * 50.0


class NodeResourcesBalancedAllocation(ScorePlugin):
    """Prefer nodes whose cpu and memory would be used in equal proportion: (1 - std) x 100."""

    name = "NodeResourcesBalancedAllocation"

    def score(self, t: NodeTable, p: PodInfo, idx: np.ndarray) -> np.ndarray:
        f = _fraction(t, p, idx)
        return 100.0 - np.abs(f[0] - f[1]) * 50.0  # the std of two numbers is half their distance


class NodeResourcesMostAllocated(ScorePlugin):
    """Prefer the fullest node that still fits (bin packing): mean over cpu and memory of used share x 100.

    kube-scheduler's NodeResourcesFit with ``scoringStrategy.type: MostAllocated``."""

    name = "NodeResourcesMostAllocated"

    def score(self, t: NodeTable, p: PodInfo, idx: np.ndarray) -> np.ndarray:
        f = _fraction(t, p, idx)
        return (f[0] + f[1]) * 50.0


class RequestedToCapacityRatio(ScorePlugin):
    """Score by a piecewise-linear function of utilization (``shape``: (utilization %, score 0..10) points),
    as NodeResourcesFit's ``RequestedToCapacityRatio`` strategy; the default shape packs (0 -> 0, 100 -> 10)."""

    name = "RequestedToCapacityRatio"

    def __init__(self, shape: list[tuple[float, float]] | None = None):
        self.shape = sorted(shape or [(0, 0), (100, 10)])

    def score(self, t: NodeTable, p: PodInfo, idx: np.ndarray) -> np.ndarray:
        f = _fraction(t, p, idx) * 100.0
        xs = np.array([x for x, _ in self.shape], dtype=np.float64)
        ys = np.array([y * 10.0 for _, y in self.shape], dtype=np.float64)  # shape scores are 0..10
        return (np.interp(f[0], xs, ys) + np.interp(f[1], xs, ys)) / 2.0


SCORING_STRATEGIES = ("LeastAllocated", "MostAllocated", "RequestedToCapacityRatio")


def scores_for(strategy: str = "LeastAllocated", shape: list[tuple[float, float]] | None = None
               ) -> list[tuple[ScorePlugin, int]]:
    """The score plugins for one of NodeResourcesFit's scoring strategies, plus BalancedAllocation and
    PodTopologySpread (weight 2, as in kube-scheduler's default profile)."""
    if strategy not in SCORING_STRATEGIES:
        raise ValueError(f"unknown scoring strategy {strategy!r}: choose {', '.join(SCORING_STRATEGIES)}")
    fit: ScorePlugin = {"LeastAllocated": NodeResourcesLeastAllocated, "MostAllocated": NodeResourcesMostAllocated,
                        }.get(strategy, lambda: RequestedToCapacityRatio(shape))()
    return [(fit, 1), (NodeResourcesBalancedAllocation(), 1), (PodTopologySpread(), 2)]


# PodTopologySpread reads the classes above, so it is imported once they exist
from labkit.controlplane.scheduler.topologyspread import PodTopologySpread  # noqa: E402

DEFAULT_FILTERS: list[FilterPlugin] = [NodeUnschedulable(), NodeName(), TaintToleration(), NodeAffinity(),
                                       NodeResourcesFit(), PodTopologySpread()]
DEFAULT_SCORES: list[tuple[ScorePlugin, int]] = [(NodeResourcesLeastAllocated(), 1),
                                                 (NodeResourcesBalancedAllocation(), 1), (PodTopologySpread(), 2)]
