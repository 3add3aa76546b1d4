"""Where a backend's requests go: the ready addresses of its Service's Endpoints, taken in turn.

The pool is rebuilt from the informers' caches whenever a Service or Endpoints object changes.
An address that leaves the Endpoints gets no new request; requests already sent to it run to
their end (the gateway never cuts them), and it is listed as *draining* until the last one ends.

Pod addresses are not reachable from the host: labkit's nodes are network namespaces, and a pod
has routes only to the pod and service ranges. So each upstream connection is opened from inside
the namespace of the node the pod runs on (``nodeName`` in the Endpoints address), where the pod
sits on the node's bridge.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
from collections import Counter
from dataclasses import dataclass

from .routing import Backend


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int
    node: str | None

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


def service_endpoints(backend: Backend, service: dict | None, endpoints: dict | None) -> list[Endpoint]:
    """The ready addresses for one Ingress backend (a Service port given by number or by name)."""
    if service is None:
        return []
    ports = (service.get("spec") or {}).get("ports") or []
    sp = next((p for p in ports if backend.port in (p.get("port"), p.get("name"))), None)
    if sp is None:
        return []
    out = []
    for subset in (endpoints or {}).get("subsets") or []:
        eports = subset.get("ports") or []
        match = [p for p in eports if p.get("name", "") == sp.get("name", "")] or (eports if len(eports) == 1 else [])
        for p in match:
            out += [Endpoint(a["ip"], int(p["port"]), a.get("nodeName")) for a in subset.get("addresses") or []]
    return sorted(set(out), key=lambda e: (e.ip, e.port))


class UpstreamPool:
    """Round-robin over each backend's ready endpoints; counts requests in flight per endpoint."""

    def __init__(self) -> None:
        self._ready: dict[Backend, list[Endpoint]] = {}
        self._turn: dict[Backend, itertools.count] = {}
        self.inflight: Counter[Endpoint] = Counter()
        self.node_of: dict[str, str | None] = {}  # pod IP -> node name, for the socket factory

    def update(self, backends: set[Backend], services: dict[str, dict], endpoints: dict[str, dict]) -> None:
        """Recompute every backend's ready list from the caches (``namespace/name`` -> object)."""
        ready = {}
        for b in backends:
            key = f"{b.namespace}/{b.service}"
            ready[b] = service_endpoints(b, services.get(key), endpoints.get(key))
        self._ready = ready
        live = {e.ip: e.node for eps in ready.values() for e in eps}
        live.update({e.ip: e.node for e in self.inflight})  # a draining endpoint's node is still needed
        self.node_of = live

    def ready(self, backend: Backend) -> list[Endpoint]:
        return list(self._ready.get(backend, []))

    def pick(self, backend: Backend) -> Endpoint | None:
        eps = self._ready.get(backend)
        if not eps:
            return None
        n = next(self._turn.setdefault(backend, itertools.count()))
        return eps[n % len(eps)]

    def draining(self) -> list[Endpoint]:
        """Endpoints no longer ready that still have requests in flight."""
        live = {e for eps in self._ready.values() for e in eps}
        return sorted((e for e, n in self.inflight.items() if n > 0 and e not in live), key=str)

    def begin(self, ep: Endpoint) -> None:
        self.inflight[ep] += 1

    def end(self, ep: Endpoint) -> None:
        self.inflight[ep] -= 1
        if self.inflight[ep] <= 0:
            del self.inflight[ep]


class NodeSockets:
    """Makes TCP sockets inside a node's network namespace (a socket stays in the one it was made in).

    ``setns`` changes only the calling thread's namespace, and it is switched back at once, so
    this is safe on the event loop's thread; the namespace files are opened once and kept.
    """

    def __init__(self, netns_of_node) -> None:
        self.netns_of_node = netns_of_node  # node name -> /run/netns/... path
        self._fds: dict[str, int] = {}
        self._own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self._lock = threading.Lock()

    def socket(self, node: str | None, family: int = socket.AF_INET) -> socket.socket:
        from labkit.oci import syscalls as sc

        if not node:
            return socket.socket(family, socket.SOCK_STREAM)
        path = self.netns_of_node(node)
        with self._lock:
            fd = self._fds.get(path)
            if fd is None:
                fd = self._fds[path] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            sc.setns(fd, sc.CLONE_NEWNET)
            try:
                return socket.socket(family, socket.SOCK_STREAM)
            finally:
                sc.setns(self._own, sc.CLONE_NEWNET)

    def forget(self, node: str) -> None:
        """Drop a node's namespace file (the node went, or its namespace was made again)."""
        fd = self._fds.pop(self.netns_of_node(node), None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        os.close(self._own)
