"""PodTopologySpread: keep a workload's pods spread over zones (or nodes, or any node label).

A pod's ``spec.topologySpreadConstraints`` each name a ``topologyKey`` (a node label such as
``topology.kubernetes.io/zone``), a ``labelSelector`` (which pods count) and a ``maxSkew``. The
*skew* of placing the pod in a domain is the number of matching pods there, plus the pod itself
when it matches, minus the smallest number in any eligible domain. Following kube-scheduler:

* ``whenUnsatisfiable: DoNotSchedule`` constraints are a **filter**: a node whose domain would
  exceed ``maxSkew``, or that lacks the label, is not feasible;
* ``ScheduleAnyway`` constraints are a **score**: fewer matching pods in the node's domain scores
  higher (each constraint weighted by log(number of domains + 2)), normalised to 0..100;
* counted are pods in the incoming pod's namespace that are not being deleted, on *eligible*
  nodes: those that carry every constraint's key and pass the pod's node selector and required
  node affinity (``nodeAffinityPolicy: Honor``, the default) and, with ``nodeTaintsPolicy:
  Honor``, whose taints the pod tolerates (the default, ``Ignore``, counts tainted nodes too:
  a zone whose nodes are all down but not deleted still counts as a domain with no pods);
* ``minDomains``: while fewer domains than that are eligible, the smallest count is taken as 0.

Not done: the cluster-wide default constraints kube-scheduler applies to pods that have none,
and ``matchLabelKeys``.
"""

from __future__ import annotations

import math

import numpy as np

from labkit.client.selectors import InvalidSelector, LabelSelector
from labkit.controlplane.scheduler.nodetable import NodeTable
from labkit.controlplane.scheduler.plugins import (
    FilterPlugin,
    NodeAffinity,
    PodInfo,
    Reasons,
    ScorePlugin,
    TaintToleration,
)

ZONE = "topology.kubernetes.io/zone"
HOSTNAME = "kubernetes.io/hostname"
MISSING_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"
SKEW = "node(s) didn't match pod topology spread constraints"


def constraints(pod: dict, when: str) -> list[dict]:
    """The pod's spread constraints with ``whenUnsatisfiable == when`` (DoNotSchedule or ScheduleAnyway)."""
    out = []
    for c in (pod.get("spec") or {}).get("topologySpreadConstraints") or []:
        if isinstance(c, dict) and c.get("whenUnsatisfiable", "DoNotSchedule") == when and c.get("topologyKey"):
            out.append(c)
    return out


def _no_constraints(p: PodInfo) -> bool:
    """Most pods have none: answer that once per scheduling attempt, cheaply."""
    none = p.cache.get("no-spread")
    if none is None:
        none = p.cache["no-spread"] = not p.spec.get("topologySpreadConstraints")
    return none


class _Counts:
    """Matching pods per domain of one constraint, over the eligible nodes."""

    def __init__(self, t: NodeTable, p: PodInfo, c: dict, eligible: np.ndarray):
        self.codes, vocab = t.label_codes(c["topologyKey"])
        try:
            selector = LabelSelector.from_match(c.get("labelSelector"))
        except InvalidSelector:
            selector = LabelSelector.nothing()
        md = p.pod.get("metadata") or {}
        ns = md.get("namespace", "default")
        self.self_match = 1 if selector.matches(md.get("labels") or {}) else 0
        self.max_skew = max(1, int(c.get("maxSkew") or 1))
        per_slot = np.zeros(t.cap, dtype=np.int64)
        for key, (slot, _req, _nz) in t.pods.items():
            meta = t.pod_labels.get(key)
            if meta is None or key == p.key or meta[2] or meta[0] != ns:
                continue
            if selector.matches(meta[1]):
                per_slot[slot] += 1
        ok = eligible & (self.codes >= 0)
        self.domains = np.unique(self.codes[ok])
        self.per_domain = np.bincount(self.codes[ok], weights=per_slot[ok], minlength=len(vocab)).astype(np.int64)
        self.min_match = int(self.per_domain[self.domains].min()) if len(self.domains) else 0
        min_domains = c.get("minDomains")
        if isinstance(min_domains, int) and len(self.domains) < min_domains:
            self.min_match = 0

    def in_domain(self, idx: np.ndarray) -> np.ndarray:
        """Matching pods in the domain of each node of ``idx`` (0 where the node lacks the key)."""
        codes = self.codes[idx]
        return np.where(codes >= 0, self.per_domain[np.maximum(codes, 0)] if len(self.per_domain) else 0, 0)


def _eligible(t: NodeTable, p: PodInfo, cs: list[dict]) -> np.ndarray:
    """Node slots whose pods count: they have every key and pass the pod's affinity (and taints when honoured)."""
    slots = np.arange(t.cap)
    ok = t.alive.copy()
    for c in cs:
        ok &= t.label_codes(c["topologyKey"])[0] >= 0
    if any(c.get("nodeAffinityPolicy", "Honor") == "Honor" for c in cs):
        ok &= NodeAffinity().filter(t, p, slots)[0]
    if any(c.get("nodeTaintsPolicy", "Ignore") == "Honor" for c in cs):
        ok &= TaintToleration().filter(t, p, slots)[0]
    return ok


class PodTopologySpread(FilterPlugin, ScorePlugin):
    """kube-scheduler's PodTopologySpread: DoNotSchedule as a filter, ScheduleAnyway as a score."""

    name = "PodTopologySpread"

    def filter(self, t: NodeTable, p: PodInfo, idx: np.ndarray) -> tuple[np.ndarray, Reasons]:
        cs = [] if _no_constraints(p) else constraints(p.pod, "DoNotSchedule")
        if not cs:
            return np.ones(len(idx), dtype=bool), lambda j: []
        eligible = _eligible(t, p, cs)
        ok = np.ones(len(idx), dtype=bool)
        missing = np.zeros(len(idx), dtype=bool)
        for c in cs:
            n = _Counts(t, p, c, eligible)
            has = n.codes[idx] >= 0
            missing |= ~has
            ok &= has & (n.in_domain(idx) + n.self_match - n.min_match <= n.max_skew)
        return ok, lambda j: [MISSING_LABEL if missing[j] else SKEW]

    def score(self, t: NodeTable, p: PodInfo, idx: np.ndarray) -> np.ndarray | None:
        cs = [] if _no_constraints(p) else constraints(p.pod, "ScheduleAnyway")
        if not cs:
            return None
        eligible = _eligible(t, p, cs)
        raw = np.zeros(len(idx), dtype=np.float64)
        has_all = np.ones(len(idx), dtype=bool)
        for c in cs:
            n = _Counts(t, p, c, eligible)
            has_all &= n.codes[idx] >= 0
            weight = math.log(len(n.domains) + 2)
            raw += n.in_domain(idx) * weight + (n.max_skew - 1)
        out = np.zeros(len(idx), dtype=np.float64)
        if not has_all.any():
            return out
        lo, hi = float(raw[has_all].min()), float(raw[has_all].max())
        out[has_all] = 100.0 if hi == 0 else 100.0 * (hi + lo - raw[has_all]) / hi
        return out
