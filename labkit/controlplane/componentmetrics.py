"""``/metrics`` for the control-plane processes that have no HTTP API of their own (scheduler,
controller-manager), as kube-scheduler and kube-controller-manager serve it on their ports.

Each component keeps its own :class:`prometheus_client.CollectorRegistry` (an in-process cluster
runs them side by side in one Python process) and reads its counters when scraped, so nothing is
counted twice and nothing is added to the hot path but plain integer increments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


async def serve_metrics(registry: CollectorRegistry, port: int = 0, host: str = "127.0.0.1",
                        ) -> tuple[web.AppRunner, int]:
    """Serve ``/metrics`` (and ``/healthz``) for one registry; returns the runner and the port it bound."""
    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


class FromCallable(Collector):
    """A collector whose families come from a function, called at each scrape."""

    def __init__(self, families: Callable[[], Iterator]):
        self.families = families

    def collect(self) -> Iterator:
        yield from self.families()


def scheduler_registry(scheduler) -> CollectorRegistry:  # noqa: ANN001 - a labkit Scheduler
    """kube-scheduler's main series, read from a :class:`~labkit.controlplane.scheduler.scheduler.Scheduler`."""
    def families() -> Iterator:
        attempts = CounterMetricFamily("scheduler_schedule_attempts_total",
                                       "Number of attempts to schedule pods, by the result.",
                                       labels=["result", "profile"])
        for result, n in scheduler.attempts.items():
            attempts.add_metric([result, scheduler.name], n)
        yield attempts
        pending = GaugeMetricFamily("scheduler_pending_pods", "Number of pending pods, by the queue type.",
                                    labels=["queue"])
        pending.add_metric(["active"], scheduler.queue.qsize())
        pending.add_metric(["unschedulable"], len(scheduler.unschedulable))
        yield pending
        pre = CounterMetricFamily("scheduler_preemption_attempts_total", "Total preemption attempts in the cluster")
        pre.add_metric([], scheduler.preemptions)
        yield pre
    reg = CollectorRegistry(auto_describe=True)
    reg.register(FromCallable(families))
    return reg


def controller_manager_registry(controllers: list) -> CollectorRegistry:
    """kube-controller-manager's work-queue series, one label value per controller."""
    def families() -> Iterator:
        adds = CounterMetricFamily("workqueue_adds_total", "Total number of adds handled by workqueue",
                                   labels=["name"])
        retries = CounterMetricFamily("workqueue_retries_total", "Total number of retries handled by workqueue",
                                      labels=["name"])
        depth = GaugeMetricFamily("workqueue_depth", "Current depth of workqueue", labels=["name"])
        syncs = CounterMetricFamily("labkit_controller_syncs_total", "Reconciles run by each controller "
                                    "(labkit's own series)", labels=["name"])
        for c in controllers:
            adds.add_metric([c.name], c.queue.adds)
            retries.add_metric([c.name], c.queue.retries)
            depth.add_metric([c.name], len(c.queue))
            syncs.add_metric([c.name], c.syncs)
        yield from (adds, retries, depth, syncs)
    reg = CollectorRegistry(auto_describe=True)
    reg.register(FromCallable(families))
    return reg
