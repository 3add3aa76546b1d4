"""The scheduler's picture of the cluster: every node as a column in numpy arrays.

Filters and scores then run over all nodes at once (one vectorised expression per plugin)
instead of a Python loop per node, which is what lets one process place thousands of pods a
second on 5,000 nodes. Rows are resources (cpu in millicores, memory in bytes, pods, extended
resources such as nvidia.com/gpu); columns are node slots.
"""

from __future__ import annotations

import numpy as np

from labkit.client import quantity
from labkit.client.pods import pod_requests
from labkit.controlplane.scheduler.podspec import nonzero_requests

BASE_RESOURCES = ("cpu", "memory", "pods")


class NodeTable:
    def __init__(self, capacity: int = 64):
        self.rows: dict[str, int] = {r: i for i, r in enumerate(BASE_RESOURCES)}
        self.cap = capacity
        self.alloc = np.zeros((len(self.rows), capacity), dtype=np.int64)
        self.req = np.zeros_like(self.alloc)
        self.nz = np.zeros((2, capacity), dtype=np.float64)  # non-zero cpu/memory requests, for scores
        self.inv_alloc = np.zeros((2, capacity), dtype=np.float64)  # 1/allocatable cpu, memory (0 if none)
        self.no_alloc = np.zeros((2, capacity), dtype=bool)
        self.alive = np.zeros(capacity, dtype=bool)
        self.unschedulable = np.zeros(capacity, dtype=bool)
        self.taint_group = np.zeros(capacity, dtype=np.int32)
        self.names: list[str | None] = [None] * capacity
        self.slot: dict[str, int] = {}
        self.labels: list[dict] = [{} for _ in range(capacity)]
        self.taint_sets: list[tuple] = [()]  # group id -> tuple of (key, value, effect)
        self._taint_ids: dict[tuple, int] = {(): 0}
        self._free: list[int] = []
        self._next = 0
        self._ordered: tuple[np.ndarray, list[str]] | None = None
        self._signature: dict[str, tuple] = {}
        self._label_cache: dict[str, tuple[np.ndarray, dict[str, int]]] = {}
        self.pods: dict[str, tuple[int, dict[str, int], tuple[int, int]]] = {}  # pod key -> (slot, req, nz)
        # pod key -> (namespace, labels, terminating): what PodTopologySpread counts
        self.pod_labels: dict[str, tuple[str, dict[str, str], bool]] = {}

    # ------------------------------------------------------------------ nodes
    def _grow(self) -> None:
        new = self.cap * 2
        for attr in ("alloc", "req", "nz", "inv_alloc", "no_alloc"):
            a = getattr(self, attr)
            b = np.zeros((a.shape[0], new), dtype=a.dtype)
            b[:, : self.cap] = a
            setattr(self, attr, b)
        for attr in ("alive", "unschedulable", "taint_group"):
            a = getattr(self, attr)
            b = np.zeros(new, dtype=a.dtype)
            b[: self.cap] = a
            setattr(self, attr, b)
        self.names += [None] * (new - self.cap)
        self.labels += [{} for _ in range(new - self.cap)]
        self.cap = new

    def _row(self, resource: str) -> int:
        if resource not in self.rows:
            self.rows[resource] = len(self.rows)
            self.alloc = np.vstack([self.alloc, np.zeros((1, self.cap), dtype=np.int64)])
            self.req = np.vstack([self.req, np.zeros((1, self.cap), dtype=np.int64)])
        return self.rows[resource]

    def upsert_node(self, node: dict) -> bool:
        """Add or refresh a node; returns True when something the scheduler uses changed."""
        md, spec, status = node["metadata"], node.get("spec") or {}, node.get("status") or {}
        name = md["name"]
        alloc = status.get("allocatable") or status.get("capacity") or {}
        taints = tuple(sorted((t.get("key", ""), t.get("value") or "", t.get("effect", ""))
                              for t in spec.get("taints") or []))
        labels = dict(md.get("labels") or {})
        sig = (tuple(sorted(alloc.items())), taints, tuple(sorted(labels.items())), bool(spec.get("unschedulable")))
        if self._signature.get(name) == sig:
            return False
        self._signature[name] = sig
        i = self.slot.get(name)
        if i is None:
            if self._free:
                i = self._free.pop()
            else:
                if self._next >= self.cap:
                    self._grow()
                i = self._next
                self._next += 1
            self.slot[name] = i
            self.names[i] = name
            self.alive[i] = True
            self._ordered = None
        self.alloc[:, i] = 0
        for r, q in alloc.items():
            try:
                amount = quantity.amount(r, q)
            except ValueError:
                continue
            row = self._row(r)  # may grow self.alloc: index after
            self.alloc[row, i] = amount
        for r in (0, 1):
            a = float(self.alloc[r, i])
            self.inv_alloc[r, i] = 1.0 / a if a > 0 else 0.0
            self.no_alloc[r, i] = a <= 0 and self.alive[i]
        if self.labels[i] != labels:
            self.labels[i] = labels
            self._label_cache.clear()
        if taints not in self._taint_ids:
            self._taint_ids[taints] = len(self.taint_sets)
            self.taint_sets.append(taints)
        self.taint_group[i] = self._taint_ids[taints]
        self.unschedulable[i] = bool(spec.get("unschedulable"))
        return True

    def remove_node(self, name: str) -> None:
        i = self.slot.pop(name, None)
        self._signature.pop(name, None)
        if i is None:
            return
        self.alive[i] = False
        self.names[i] = None
        self._ordered = None
        self.labels[i] = {}
        self.alloc[:, i] = 0
        self.req[:, i] = 0
        self.nz[:, i] = 0
        self.inv_alloc[:, i] = 0
        self.no_alloc[:, i] = False
        self._label_cache.clear()
        self._free.append(i)
        for k in [k for k, v in self.pods.items() if v[0] == i]:
            del self.pods[k]
            self.pod_labels.pop(k, None)

    # ------------------------------------------------------------------ pods
    def add_pod(self, key: str, node_name: str, pod: dict, req: dict[str, int] | None = None) -> None:
        """Count a pod's requests against its node (idempotent per pod key)."""
        i = self.slot.get(node_name)
        if i is None:
            return
        md = pod.get("metadata") or {}
        meta = (md.get("namespace", "default"), md.get("labels") or {}, bool(md.get("deletionTimestamp")))
        have = self.pods.get(key)
        if have is not None:
            if have[0] == i:
                self.pod_labels[key] = meta  # a pod being deleted stops counting for spread
                return
            self.remove_pod(key)
        self.pod_labels[key] = meta
        req = req if req is not None else pod_requests(pod)
        nz = nonzero_requests(pod)
        for r, v in req.items():
            row = self._row(r)
            self.req[row, i] += v
        self.nz[0, i] += nz[0]
        self.nz[1, i] += nz[1]
        self.pods[key] = (i, req, nz)

    def remove_pod(self, key: str) -> None:
        self.pod_labels.pop(key, None)
        have = self.pods.pop(key, None)
        if have is None:
            return
        i, req, nz = have
        for r, v in req.items():
            self.req[self.rows[r], i] -= v
        self.nz[0, i] -= nz[0]
        self.nz[1, i] -= nz[1]

    def ordered(self) -> tuple[np.ndarray, list[str]]:
        """Live slots sorted by node name, and the names: cached until a node joins or leaves."""
        if self._ordered is None:
            pairs = sorted((n, i) for n, i in self.slot.items())
            self._ordered = (np.array([i for _, i in pairs], dtype=np.int64), [n for n, _ in pairs])
        return self._ordered

    # ------------------------------------------------------------------ labels
    def label_codes(self, key: str) -> tuple[np.ndarray, dict[str, int]]:
        """Per-slot integer code of label ``key`` (-1 when absent) and the value->code vocabulary."""
        hit = self._label_cache.get(key)
        if hit is not None:
            return hit
        vocab: dict[str, int] = {}
        codes = np.full(self.cap, -1, dtype=np.int32)
        for i, lab in enumerate(self.labels):
            v = lab.get(key)
            if v is not None:
                codes[i] = vocab.setdefault(v, len(vocab))
        self._label_cache[key] = (codes, vocab)
        return codes, vocab

    def label_values(self, key: str) -> list[str | None]:
        return [lab.get(key) for lab in self.labels]

    def __len__(self) -> int:
        return len(self.slot)
