"""Node lifecycle: notice a node that stopped renewing its Lease, taint it, evict its pods.

Each kubelet renews ``kube-node-lease/<node>`` every few seconds. When a node's lease has not
moved for ``grace`` seconds the controller sets its Ready condition to Unknown and adds the
``node.kubernetes.io/unreachable:NoExecute`` taint. Pods on a node with a NoExecute taint they
do not tolerate are evicted (those with ``tolerationSeconds`` after that many seconds); their
ReplicaSet then creates replacements, which the scheduler places on healthy nodes. When the
lease moves again the taint goes away.
"""

from __future__ import annotations

import asyncio
import time

from labkit.client.conditions import condition
from labkit.client.events import now_iso
from labkit.client.rest import ApiError
from labkit.client.taints import toleration_matches
from labkit.controlplane.controllers.base import Controller

UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"


def _ready_heartbeat(node: dict) -> str | None:
    """When the kubelet last posted Ready=True (None while the node is not Ready)."""
    c = condition(node, "Ready")
    return c.get("lastHeartbeatTime") if c is not None and c.get("status") == "True" else None


class NodeLifecycleController(Controller):
    name = "node-lifecycle-controller"
    workers = 1

    def __init__(self, *a, grace: float = 40.0, eviction_cap: float | None = None, **kw):
        super().__init__(*a, **kw)
        self.grace = grace
        self.eviction_cap = eviction_cap  # labs shorten tolerationSeconds (default 300 s) to this
        self.nodes = self.informers.get("nodes")
        self.leases = self.informers.get("leases", "kube-node-lease")
        self.pods = self.informers.get("pods")
        self.last_seen: dict[str, float] = {}
        self._lease_rv: dict[str, str] = {}
        self.leases.add_handler(self._lease, lambda o, n: self._lease(n))
        self.nodes.add_handler(self._node_seen, self._node_updated)
        self.tainted_at: dict[tuple[str, str], float] = {}

    def _lease(self, lease: dict) -> None:
        name = lease["metadata"]["name"]
        rt = (lease.get("spec") or {}).get("renewTime")
        if rt != self._lease_rv.get(name):
            self._lease_rv[name] = rt
            self.last_seen[name] = time.monotonic()

    def _node_seen(self, node: dict) -> None:
        self.last_seen.setdefault(node["metadata"]["name"], time.monotonic())

    def _node_updated(self, old: dict, node: dict) -> None:
        self._node_seen(node)
        # a kubelet posting Ready=True with a new heartbeat is also a sign of life
        if _ready_heartbeat(node) and _ready_heartbeat(node) != _ready_heartbeat(old):
            self.last_seen[node["metadata"]["name"]] = time.monotonic()

    async def run(self) -> None:
        while True:
            try:
                await self.monitor()
            except asyncio.CancelledError:
                raise
            except ApiError:
                pass
            await asyncio.sleep(min(1.0, self.grace / 4))

    async def monitor(self) -> None:
        """One pass over all nodes: mark the silent ones, heal the live ones, evict where due."""
        now = time.monotonic()
        for node in list(self.nodes.cache.values()):
            name = node["metadata"]["name"]
            silent = now - self.last_seen.get(name, now) > self.grace
            taints = (node.get("spec") or {}).get("taints") or []
            has = any(t.get("key") == UNREACHABLE for t in taints)
            if silent and not has:
                await self._mark_unreachable(node)
            elif not silent and has:
                await self._heal(node)
            if has or silent:
                await self._evict(node, [t for t in taints if t.get("effect") == "NoExecute"]
                                  or [{"key": UNREACHABLE, "effect": "NoExecute"}])

    async def _mark_unreachable(self, node: dict) -> None:
        name = node["metadata"]["name"]
        conds = []
        for c in (node.get("status") or {}).get("conditions") or []:
            if c.get("type") == "Ready":
                c = {**c, "status": "Unknown", "reason": "NodeStatusUnknown",
                     "message": "Kubelet stopped posting node status.", "lastTransitionTime": now_iso()}
            conds.append(c)
        if condition(node, "Ready") is None:
            conds.append({"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
                          "message": "Kubelet stopped posting node status.", "lastTransitionTime": now_iso(),
                          "lastHeartbeatTime": now_iso()})
        await self.client.patch("nodes", name, {"status": {"conditions": conds}}, sub="status")
        taints = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("key") != UNREACHABLE]
        taints.append({"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": now_iso()})
        await self.client.patch("nodes", name, {"spec": {"taints": taints}})
        self.tainted_at[(name, UNREACHABLE)] = time.monotonic()
        self.recorder.event(node, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady")

    async def _heal(self, node: dict) -> None:
        name = node["metadata"]["name"]
        taints = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("key") != UNREACHABLE]
        await self.client.patch("nodes", name, {"spec": {"taints": taints or None}})
        self.tainted_at.pop((name, UNREACHABLE), None)
        self.recorder.event(node, "Normal", "NodeReady", f"Node {name} status is now: NodeReady")

    async def _evict(self, node: dict, taints: list[dict]) -> None:
        name = node["metadata"]["name"]
        since = self.tainted_at.setdefault((name, UNREACHABLE), time.monotonic())
        waited = time.monotonic() - since
        for pod in list(self.pods.cache.values()):
            if (pod.get("spec") or {}).get("nodeName") != name or pod["metadata"].get("deletionTimestamp"):
                continue
            delay = self._tolerated_for(pod, taints)
            if delay is not None and waited < delay:
                continue
            md = pod["metadata"]
            try:
                # the node's kubelet cannot confirm the deletion, so do not wait for it (grace 0)
                await self.client.delete("pods", md["name"], md.get("namespace"), grace_period=0)
                self.recorder.event(pod, "Normal", "TaintManagerEviction",
                                    f"Marking for deletion Pod {md.get('namespace')}/{md['name']}")
            except ApiError as exc:
                if exc.code != 404:
                    raise

    def _tolerated_for(self, pod: dict, taints: list[dict]) -> float | None:
        """Seconds the pod may stay (None = forever); 0 when some taint is not tolerated."""
        tol = (pod.get("spec") or {}).get("tolerations") or []
        limit: float | None = None
        for taint in taints:
            matching = [t for t in tol if toleration_matches(t, taint)]
            if not matching:
                return 0.0
            secs = [t.get("tolerationSeconds") for t in matching]
            if all(s is not None for s in secs):
                s = float(max(secs))
                if self.eviction_cap is not None:
                    s = min(s, self.eviction_cap)
                limit = s if limit is None else min(limit, s)
        return limit
