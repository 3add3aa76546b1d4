"""Hollow nodes: many kubelets in one process on the bookkeeping-only runtime (like kubemark/KWOK).

Each hollow kubelet registers a real Node and renews a real Lease, and (optionally) "runs" the
pods bound to it — the runtime only records them — so the control plane sees a cluster of
thousands of nodes. One shared pod watch feeds them all instead of one watch per node.
"""

from __future__ import annotations

import asyncio

from labkit.client import Client
from labkit.client.informer import Informer
from labkit.node.kubelet.kubelet import Kubelet


def hollow_runtime():
    from labkit.runtime.simulated import HollowRuntime

    return HollowRuntime()


class HollowNodes:
    def __init__(self, client: Client, count: int, prefix: str = "hollow", *, cpu: str = "4", memory: str = "16Gi",
                 pods: str = "110", run_pods: bool = True, lease_interval: float = 10.0,
                 status_interval: float = 60.0, labels: dict[str, str] | None = None, register_concurrency: int = 32):
        self.client = client
        self.kubelets: dict[str, Kubelet] = {}
        for i in range(count):
            name = f"{prefix}-{i:05d}"
            self.kubelets[name] = Kubelet(
                client, name, hollow_runtime(), capacity={"cpu": cpu, "memory": memory, "pods": pods},
                labels={"labkit.dev/hollow": "true", **(labels or {})}, lease_interval=lease_interval,
                status_interval=status_interval, serve_logs=False, hollow=True, watch_pods=False,
            )
        self.run_pods = run_pods
        self.register_concurrency = register_concurrency
        self.pods = Informer(client, "pods") if run_pods else None
        if self.pods:
            self.pods.add_handler(self._dispatch, lambda o, n: self._dispatch(n), self._deleted)
        self._tasks: list[asyncio.Task] = []

    def _dispatch(self, pod: dict) -> None:
        k = self.kubelets.get((pod.get("spec") or {}).get("nodeName") or "")
        if k is not None:
            k.on_pod(pod)

    def _deleted(self, pod: dict) -> None:
        k = self.kubelets.get((pod.get("spec") or {}).get("nodeName") or "")
        if k is not None:
            k.on_pod_deleted(pod)

    async def start(self, heartbeat: bool = True) -> None:
        """Register every node (concurrently); then heartbeats and, if asked, the shared pod watch."""
        sem = asyncio.Semaphore(self.register_concurrency)

        async def reg(k: Kubelet) -> None:
            async with sem:
                await k.register()
                if heartbeat:
                    await k.renew_lease()

        await asyncio.gather(*(reg(k) for k in self.kubelets.values()))
        if heartbeat:
            for k in self.kubelets.values():
                k._tasks.append(asyncio.create_task(k._every(k.lease_interval, k.renew_lease)))
        if self.pods:
            self._tasks.append(asyncio.create_task(self.pods.run()))
            await self.pods.wait_synced(120)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(k.stop() for k in self.kubelets.values()), return_exceptions=True)
