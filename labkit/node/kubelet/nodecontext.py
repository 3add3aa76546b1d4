"""What a pod worker and the kubelet's log server may use of their node, and nothing more.

The kubelet builds one :class:`NodeContext` and hands it to every :class:`~labkit.node.kubelet.podworker.PodWorker`
and to its HTTP server, so neither reaches into the kubelet (nor imports it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.client import Client
from labkit.client.events import EventRecorder
from labkit.node.kubelet.plugins import NodePlugins
from labkit.runtime.base import PodSandboxStatus, Runtime


@dataclass
class NodeContext:
    node_name: str
    #: the label on this node's sandboxes (``<node>@<api server>``): clusters on one host never touch each other's pods
    owner: str
    address: str  #: the node's IP, reported as each pod's hostIP
    state: Path  #: where pod folders (emptyDir, configMap volumes) live
    client: Client
    events: EventRecorder
    runtime: Runtime
    plugins: NodePlugins
    #: run a blocking runtime or plug-in call off the event loop: ``await call_runtime(fn, *args)``
    call_runtime: Callable[..., Awaitable[Any]]
    #: ask the runtime its name again (a CRI server may come back on another backend)
    sync_runtime_version: Callable[[], Awaitable[None]]
    runtime_name: str  #: the prefix of containerIDs, kept current by ``sync_runtime_version``
    hollow: bool = False  #: a simulated node: no pod folders, no runtime polling
    pod_poll: float = 1.0  #: seconds between a busy worker's own looks at the runtime
    backoff_base: float = 2.0  #: CrashLoopBackOff: the first delay, doubled per crash up to backoff_max
    backoff_max: float = 60.0
    #: sandboxes the runtime already had when the kubelet started, by pod uid, until a worker adopts one
    existing: dict[str, PodSandboxStatus] = field(default_factory=dict)
    #: told of every probe run: (probeKind, "ns/pod", container, succeeded), for the kubelet's /metrics
    probe_observer: Callable[[str, str, str, bool], None] | None = None

    def adopt_sandbox(self, uid: str) -> PodSandboxStatus | None:
        """A sandbox this node's runtime already has for the pod (after a kubelet restart)."""
        return self.existing.pop(uid, None)
