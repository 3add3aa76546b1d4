"""``Cluster(processes=False)``: scheduler, controller-manager and nodes on one background thread.

Quicker to start than processes, and a lab can look inside the components (the scheduler's
decisions, a kubelet's pod records). Each node is built by :func:`labkit.node.assembly.start_node`
from the same :class:`~labkit.node.assembly.NodeConfig` a process cluster renders as a command line.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

from labkit.cluster.supervisor import ClusterError

if TYPE_CHECKING:
    from labkit.node.assembly import NodeConfig


class InProcess:
    """Scheduler, controller-manager and kubelets as asyncio tasks on one background thread."""

    def __init__(self, name: str, kubeconfig: str, runtime_name: str, nodes: list[NodeConfig], *, node_grace: float,
                 eviction_seconds: float | None, cri_files: dict[str, tuple[str, str]] | None = None,
                 scoring_strategy: str = "LeastAllocated", hpa: tuple[float, float] = (15.0, 300.0),
                 metrics_ports: dict[str, int] | None = None):
        """``cri_files``: each node's CRI socket and trace file, when the nodes reach their runtime over CRI."""
        self.kubeconfig = kubeconfig
        self.runtime_name = runtime_name
        self.node_configs = {n.name: n for n in nodes}
        self.node_grace = node_grace
        self.eviction_seconds = eviction_seconds
        self.cri_files = cri_files
        self.scoring_strategy = scoring_strategy
        self.hpa = hpa  # the HPA controller's sync period and scale-down stabilization window
        self.metrics_ports = metrics_ports or {}
        self.metrics_servers: list = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=f"labkit-{name}", daemon=True)
        self.tasks: dict[str, asyncio.Task] = {}
        self.clients: list = []
        self.nodes: dict = {}  # node name -> labkit.node.assembly.RunningNode
        self.kubelets: dict = {}
        self.scheduler = None
        self.controllers = None
        self.cri_servers: list = []
        self.runtimes: list = []

    def call(self, coro, timeout: float = 60.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        self.thread.start()
        self.call(self._start())

    async def _client(self, agent: str):
        from labkit.client import Client

        cl = Client(self.kubeconfig, user_agent=agent)
        self.clients.append(cl)
        return cl

    async def _start(self) -> None:
        from labkit.controlplane.controllers.manager import ControllerManager
        from labkit.controlplane.scheduler.framework import Framework
        from labkit.controlplane.scheduler.plugins import scores_for
        from labkit.controlplane.scheduler.scheduler import Scheduler

        self.scheduler = Scheduler(await self._client("labkit-scheduler"),
                                   framework=Framework(scores=scores_for(self.scoring_strategy)))
        self.tasks["scheduler"] = asyncio.create_task(self.scheduler.run())
        self.controllers = ControllerManager(await self._client("labkit-controller-manager"),
                                             node_grace=self.node_grace, eviction_cap=self.eviction_seconds,
                                             hpa_sync_period=self.hpa[0], hpa_downscale_stabilization=self.hpa[1])
        from labkit.controlplane.componentmetrics import (
            controller_manager_registry,
            scheduler_registry,
            serve_metrics,
        )

        for component, registry in (("scheduler", scheduler_registry(self.scheduler)),
                                     ("controller-manager", controller_manager_registry(self.controllers.controllers))):
            if component in self.metrics_ports:
                runner, _ = await serve_metrics(registry, self.metrics_ports[component])
                self.metrics_servers.append(runner)
        self.tasks["controller-manager"] = asyncio.create_task(self.controllers.run())
        for node in self.node_configs:
            await self.start_kubelet(node)

    async def start_kubelet(self, node: str) -> None:
        """The node's runtime (behind an in-process CRI server when the cluster has them), then the node."""
        import labkit.runtime as runtimes
        from labkit.node.assembly import start_node

        rt = await asyncio.to_thread(runtimes.get, self.runtime_name)
        self.runtimes.append(rt)
        if self.cri_files is not None:
            from labkit.node.cri import RemoteRuntime, serve

            sock, trace = self.cri_files[node]
            self.cri_servers.append(serve(rt, sock, trace))
            rt = await asyncio.to_thread(RemoteRuntime, f"unix://{sock}")
            self.runtimes.append(rt)
        running = await start_node(self.node_configs[node], rt)
        self.nodes[node] = running
        self.kubelets[node] = running.kubelet

    def kill(self, component: str) -> None:
        """Simulate a crash: the component stops talking to the API (containers keep running)."""
        if component.startswith("kubelet-"):
            self.kubelets.pop(component[8:])
            self.call(self.nodes.pop(component[8:]).stop(kill_pods=False))
            return
        t = self.tasks.pop(component, None)
        if t is None:
            raise ClusterError(f"no running component {component!r}")
        self.loop.call_soon_threadsafe(t.cancel)

    def power_off(self, node: str) -> None:
        """The node's machine is gone: its kubelet stops with no word to the apiserver, and its pods'
        containers, network and sandboxes go with it (as when a zone loses power)."""
        running = self.nodes.pop(node, None)
        if running is None:
            raise ClusterError(f"no running node {node!r}; running: {', '.join(sorted(self.nodes)) or 'none'}")
        self.kubelets.pop(node, None)
        self.call(running.stop(kill_pods=True), 120)

    def stop(self) -> None:
        if not self.thread.is_alive():
            return
        try:
            self.call(self._stop(), 120)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            for s in self.cri_servers:
                s.stop()
            for rt in self.runtimes:
                try:
                    rt.close()
                except Exception:  # noqa: BLE001
                    pass

    async def _stop(self) -> None:
        for t in self.tasks.values():
            t.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        await asyncio.gather(*(n.stop(kill_pods=True) for n in self.nodes.values()), return_exceptions=True)
        for runner in self.metrics_servers:
            await runner.cleanup()
        for cl in self.clients:
            await cl.close()
