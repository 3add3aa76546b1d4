"""The kubelet's resource statistics: what cAdvisor does inside a real kubelet.

While anyone reads them (and a minute after), every ``interval`` seconds the node reads each
running container's cgroup counters through the runtime (CRI ``ContainerStats``: cumulative CPU nanoseconds and the memory working set) and keeps
the samples of the last ``window`` seconds. CPU usage is a *rate*: the growth of the cumulative
counter over that window, in cores. Three readers use them:

* ``/stats/summary`` (the Summary API that metrics-server scrapes): node, pod and container
  usage in ``usageNanoCores`` and ``workingSetBytes``; the apiserver's ``metrics.k8s.io`` reads it.
* ``/metrics/resource``: the same as Prometheus text (``container_cpu_usage_seconds_total`` ...).
* ``/metrics``: the kubelet's own series (running pods and containers, probe results).

A labkit node shares its machine with the other nodes, so its node figures are the sum of its own
pods, not the whole host's as on a real node.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from labkit.runtime.base import ContainerState

if TYPE_CHECKING:
    from labkit.node.kubelet.nodecontext import NodeContext
    from labkit.node.kubelet.podworker import PodRecord

disable_created_metrics()  # kube's series have no *_created companions
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the epoch
    cpu_ns: int  # cumulative CPU time, nanoseconds
    memory: int  # working set, bytes


@dataclass(frozen=True)
class Usage:
    """One container's usage as the Summary API reports it."""
    cpu_nanocores: int | None  # None until two samples span some time
    cpu_total_ns: int
    working_set: int
    at: float
    window: float  # the seconds the rate was measured over


def rate(samples: list[Sample]) -> tuple[int | None, float]:
    """(nanocores, seconds measured over) from the first to the last sample; None when they span no time."""
    if len(samples) < 2:
        return None, 0.0
    first, last = samples[0], samples[-1]
    span = last.at - first.at
    if span <= 0:
        return None, 0.0
    grown = max(0, last.cpu_ns - first.cpu_ns)  # a restarted container's counter starts again
    return int(grown / span), span


class Stats:
    """Samples of every running container on one node, and the documents built from them."""

    def __init__(self, ctx: NodeContext, records: Mapping[str, PodRecord], interval: float = 1.0,
                 window: float = 5.0):
        self.ctx, self.records = ctx, records
        self.interval, self.window = interval, window
        self.samples: dict[str, deque[Sample]] = {}  # container id -> samples, oldest first
        # sampling runs while someone reads the stats (metrics.k8s.io, /metrics), and for ``keep``
        # seconds after, so a node nobody watches costs nothing
        self.keep = 60.0
        self.wanted_until = 0.0
        self._wanted = asyncio.Event()
        self.registry = CollectorRegistry(auto_describe=False)
        self.probes = Counter("prober_probe_total", "Cumulative number of a liveness, readiness or startup "
                              "probe for a container by result.",
                              ["probe_type", "result", "container", "pod", "namespace"], registry=self.registry)
        self.registry.register(_KubeletCollector(self))
        self.resource_registry = CollectorRegistry(auto_describe=False)
        self.resource_registry.register(_ResourceCollector(self))

    def probe_result(self, kind: str, pod_key: str, container: str, ok: bool) -> None:
        """Count one probe run (kind: livenessProbe or readinessProbe)."""
        ns, _, pod = pod_key.partition("/")
        self.probes.labels(kind.removesuffix("Probe").capitalize(), "successful" if ok else "failed",
                           container, pod, ns).inc()

    # ------------------------------------------------------------------ sampling
    def running(self) -> Iterator[tuple[PodRecord, str, str]]:
        """(pod record, container name, container id) of every running container."""
        for rec in list(self.records.values()):
            for name, cs in list(rec.current.items()):
                if cs.state == ContainerState.RUNNING:
                    yield rec, name, cs.id

    async def sample(self) -> None:
        """Read every running container's counters once."""
        now = time.time()
        seen = set()
        for _rec, _name, cid in list(self.running()):
            seen.add(cid)
            try:
                st = await self.ctx.call_runtime(self.ctx.runtime.container_stats, cid)
            except Exception as exc:  # noqa: BLE001 - a container that just went: no sample this time
                log.debug("stats of %s: %s", cid, exc)
                continue
            if st.cpu_usage_ns is None and st.memory_bytes is None:
                continue
            q = self.samples.setdefault(cid, deque())
            q.append(Sample(now, st.cpu_usage_ns or 0, st.memory_bytes or 0))
            while len(q) > 2 and now - q[1].at >= self.window:  # keep one sample at or before the window's start
                q.popleft()
        for cid in set(self.samples) - seen:
            del self.samples[cid]

    def demand(self) -> None:
        """Someone read the stats: keep sampling (a rate needs two samples, so the first read after a
        quiet spell has none yet, as metrics-server has nothing until its second scrape)."""
        self.wanted_until = time.monotonic() + self.keep
        self._wanted.set()

    async def run(self) -> None:
        while True:
            if time.monotonic() > self.wanted_until:
                self.samples.clear()  # old samples would make a rate over a gap
                self._wanted.clear()
                await self._wanted.wait()
            try:
                await self.sample()
            except Exception:  # noqa: BLE001 - never stop sampling over one bad round
                log.exception("%s: sampling container stats", self.ctx.node_name)
            await asyncio.sleep(self.interval)

    def usage(self, cid: str) -> Usage | None:
        q = self.samples.get(cid)
        if not q:
            return None
        nanocores, span = rate(list(q))
        last = q[-1]
        return Usage(nanocores, last.cpu_ns, last.memory, last.at, span)

    # ------------------------------------------------------------------ documents
    def summary(self) -> dict:
        """The kubelet Summary API (``/stats/summary``), the fields metrics-server reads."""
        self.demand()
        pods: dict[str, dict] = {}
        node_cpu, node_mem, node_total, window, newest = 0, 0, 0, 0.0, 0.0
        for rec, name, cid in self.running():
            u = self.usage(cid)
            if u is None:
                continue
            md = rec.pod["metadata"]
            entry = pods.setdefault(rec.uid, {
                "podRef": {"name": md["name"], "namespace": md.get("namespace", "default"), "uid": rec.uid},
                "containers": [], "cpu": {"usageNanoCores": 0, "usageCoreNanoSeconds": 0},
                "memory": {"workingSetBytes": 0}})
            entry["containers"].append({"name": name, "cpu": _cpu(u), "memory": _memory(u)})
            if u.cpu_nanocores is not None:
                entry["cpu"]["usageNanoCores"] += u.cpu_nanocores
                node_cpu += u.cpu_nanocores
            entry["cpu"]["usageCoreNanoSeconds"] += u.cpu_total_ns
            entry["memory"]["workingSetBytes"] += u.working_set
            entry["cpu"]["time"] = entry["memory"]["time"] = _iso(u.at)
            entry["window"] = max(entry.get("window", 0.0), u.window)
            node_mem += u.working_set
            node_total += u.cpu_total_ns
            window, newest = max(window, u.window), max(newest, u.at)
        at = _iso(newest or time.time())
        node = {"nodeName": self.ctx.node_name, "window": window or self.window,
                "cpu": {"time": at, "usageNanoCores": node_cpu, "usageCoreNanoSeconds": node_total},
                "memory": {"time": at, "workingSetBytes": node_mem}}
        return {"node": node, "pods": list(pods.values())}


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _cpu(u: Usage) -> dict:
    out: dict = {"time": _iso(u.at), "usageCoreNanoSeconds": u.cpu_total_ns}
    if u.cpu_nanocores is not None:
        out["usageNanoCores"] = u.cpu_nanocores
    return out


def _memory(u: Usage) -> dict:
    return {"time": _iso(u.at), "workingSetBytes": u.working_set}


class _ResourceCollector(Collector):
    """``/metrics/resource``: the real kubelet's series names, read from the latest samples."""

    def __init__(self, stats: Stats):
        self.stats = stats

    def collect(self) -> Iterator:
        self.stats.demand()
        labels = ["container", "pod", "namespace"]
        cpu = CounterMetricFamily("container_cpu_usage_seconds_total",
                                  "Cumulative cpu time consumed by the container in core-seconds", labels=labels)
        mem = GaugeMetricFamily("container_memory_working_set_bytes",
                                "Current working set of the container in bytes", labels=labels)
        pod_cpu = CounterMetricFamily("pod_cpu_usage_seconds_total",
                                      "Cumulative cpu time consumed by the pod in core-seconds",
                                      labels=["pod", "namespace"])
        pod_mem = GaugeMetricFamily("pod_memory_working_set_bytes", "Current working set of the pod in bytes",
                                    labels=["pod", "namespace"])
        node_cpu = CounterMetricFamily("node_cpu_usage_seconds_total",
                                       "Cumulative cpu time consumed by the node's pods in core-seconds (labkit: "
                                       "its pods only; nodes share one machine)")
        node_mem = GaugeMetricFamily("node_memory_working_set_bytes",
                                     "Current working set of the node's pods in bytes (labkit: its pods only)")
        totals: dict[tuple[str, str], list[float]] = {}
        n_cpu = n_mem = 0.0
        for rec, name, cid in self.stats.running():
            u = self.stats.usage(cid)
            if u is None:
                continue
            ns, _, pod = rec.key.partition("/")
            cpu.add_metric([name, pod, ns], u.cpu_total_ns / 1e9, timestamp=u.at)
            mem.add_metric([name, pod, ns], u.working_set, timestamp=u.at)
            t = totals.setdefault((pod, ns), [0.0, 0.0])
            t[0] += u.cpu_total_ns / 1e9
            t[1] += u.working_set
            n_cpu += u.cpu_total_ns / 1e9
            n_mem += u.working_set
        for (pod, ns), (c, m) in totals.items():
            pod_cpu.add_metric([pod, ns], c)
            pod_mem.add_metric([pod, ns], m)
        node_cpu.add_metric([], n_cpu)
        node_mem.add_metric([], n_mem)
        yield from (node_cpu, node_mem, pod_cpu, pod_mem, cpu, mem)


class _KubeletCollector(_ResourceCollector):
    """``/metrics``: the resource series plus the kubelet's own gauges."""

    def collect(self) -> Iterator:
        yield from super().collect()
        pods = GaugeMetricFamily("kubelet_running_pods", "Number of pods that have a running pod sandbox")
        pods.add_metric([], sum(1 for r in list(self.stats.records.values()) if r.sandbox is not None))
        yield pods
        containers = GaugeMetricFamily("kubelet_running_containers", "Number of containers currently running",
                                       labels=["container_state"])
        containers.add_metric(["running"], sum(1 for _ in self.stats.running()))
        yield containers
