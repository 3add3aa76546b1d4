"""The pods-by-node index: ``fieldSelector=spec.nodeName=X`` without scanning every pod.

Each kubelet lists and watches the pods bound to its node. With 150,000 pods that list would
decode every pod in the cluster, for each of 5,000 kubelets. kube-apiserver's watch cache keeps an
index on ``spec.nodeName`` for exactly this; so does this one. It is built on first use from a
list at revision R, brought forward with the watch cache's events after R, and then kept current
by every pod event the hub dispatches (on the event loop, so no locks are needed).
"""

from __future__ import annotations

import asyncio
import collections
import json

from labkit.controlplane.store import Store

from .watch import HubEvent, WatchHub

PREFIX = "/registry/pods/"


def _node_of(value: bytes) -> str:
    return (json.loads(value).get("spec") or {}).get("nodeName") or ""


class PodsByNode:
    """nodeName -> pod keys, valid at ``self.revision`` (== the hub's revision once built)."""

    def __init__(self, store: Store, hub: WatchHub):
        self.store = store
        self.hub = hub
        self.keys: dict[str, set[str]] = collections.defaultdict(set)
        self.node_of: dict[str, str] = {}
        self.ready = False
        self._building: asyncio.Task | None = None
        hub.listeners.append(self._on_events)

    def _set(self, key: str, node: str | None) -> None:
        old = self.node_of.pop(key, None)
        if old is not None:
            bucket = self.keys.get(old)
            if bucket is not None:
                bucket.discard(key)
                if not bucket:
                    del self.keys[old]
        if node is not None:
            self.node_of[key] = node
            self.keys[node].add(key)

    def _apply(self, ev: HubEvent) -> None:
        if not ev.key.startswith(PREFIX):
            return
        # the hub's attributes are computed once per event and shared with the watchers
        self._set(ev.key, None if ev.type == "DELETED" else self.hub.attrs_of(ev)[1].get("spec.nodeName", ""))

    def _on_events(self, events: list[HubEvent]) -> None:
        if self.ready:
            for ev in events:
                self._apply(ev)

    async def ensure(self) -> bool:
        """Build the index once; False if it cannot be built consistently right now."""
        if self.ready:
            return True
        if self._building is None:
            self._building = asyncio.ensure_future(self._build())
        return await asyncio.shield(self._building)

    async def _build(self) -> bool:
        kvs, rev = await asyncio.to_thread(self.store.list, PREFIX)
        nodes = await asyncio.to_thread(lambda: [(kv.key, _node_of(kv.value)) for kv in kvs])
        if self.hub.complete_from > rev:  # the watch cache no longer has what happened since the list
            self._building = None
            return False
        for key, node in nodes:
            self._set(key, node)
        for ev in self.hub.ring:
            if ev.revision > rev:
                self._apply(ev)
        self.ready = True
        return True

    def lookup(self, node: str, namespace: str | None) -> tuple[list[str], int]:
        """Pod keys on ``node`` (optionally in one namespace) and the revision they are valid at."""
        keys = self.keys.get(node, ())
        if namespace:
            prefix = f"{PREFIX}{namespace}/"
            keys = [k for k in keys if k.startswith(prefix)]
        return sorted(keys), self.hub.revision
