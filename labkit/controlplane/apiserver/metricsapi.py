"""``metrics.k8s.io/v1beta1``: NodeMetrics and PodMetrics, what ``kubectl top`` and the HPA read.

In Kubernetes this group is an *aggregated* API: kube-apiserver forwards it to metrics-server,
which scrapes every kubelet's Summary API. labkit serves it in-process, doing metrics-server's
work on request: read the Nodes, ask each Ready node's kubelet for ``/stats/summary`` (the
kubelet samples its containers' cgroups and turns cumulative CPU time into a rate over a window,
see :mod:`labkit.node.kubelet.stats`), and answer with the usage in Kubernetes quantities
(CPU in nanocores, memory working set in KiB). A node whose kubelet does not answer is left
out, as metrics-server leaves it out. Only get and list are served.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING
from urllib.parse import unquote

from aiohttp import ClientError, ClientTimeout, web

from . import errors
from .codec import decode, dumps, now_rfc3339
from .request import response
from .resources import BY_PLURAL, ResourceType
from .selectors import LabelSelector

if TYPE_CHECKING:
    from .storecalls import StoreCalls
    from .subresources import KubeletClient

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
GV = f"{GROUP}/{VERSION}"
CACHE_SECONDS = 0.5  # kubectl top and the HPA asking together share one scrape


def cpu_quantity(nanocores: int) -> str:
    return f"{int(nanocores)}n"


def memory_quantity(nbytes: int) -> str:
    return f"{int(nbytes) // 1024}Ki"


def _window(seconds: float) -> str:
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def _ready(node: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


def _kubelet_url(node: dict) -> str | None:
    status = node.get("status") or {}
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    if not port:
        return None
    host = next((a["address"] for a in status.get("addresses") or []
                 if a.get("type") == "InternalIP" and a.get("address")), "127.0.0.1")
    return f"http://{host}:{port}"


class MetricsAPI:
    """metrics-server's job, inside the apiserver: scrape the kubelets, answer NodeMetrics and PodMetrics."""

    def __init__(self, calls: StoreCalls, kubelets: KubeletClient, timeout: float = 2.0):
        self.calls, self.kubelets, self.timeout = calls, kubelets, timeout
        self._cache: tuple[float, list[tuple[dict, dict]]] | None = None
        self._lock = asyncio.Lock()

    def add_to(self, router: web.UrlDispatcher) -> None:
        base = f"/apis/{GROUP}/{VERSION}"
        for path, handler in ((base + "/nodes{slash:/*}", self.nodes), (base + "/nodes/{name}{slash:/*}", self.nodes),
                              (base + "/pods{slash:/*}", self.pods),
                              (base + "/namespaces/{namespace}/pods{slash:/*}", self.pods),
                              (base + "/namespaces/{namespace}/pods/{name}{slash:/*}", self.pods)):
            router.add_route("*", path, _guard(handler))

    # ------------------------------------------------------------------ scraping
    async def _list(self, rt: ResourceType, ns: str | None = None) -> list[dict]:
        kvs, _ = await self.calls.call(self.calls.store.list, rt.key_prefix(ns))
        return [decode(kv.value, kv.mod_revision) for kv in kvs]

    async def _summary(self, node: dict) -> dict | None:
        url = _kubelet_url(node)
        if url is None:
            return None
        try:
            async with self.kubelets.session().get(url + "/stats/summary",
                                                   timeout=ClientTimeout(total=self.timeout)) as r:
                if r.status != 200:
                    return None
                return await r.json()
        except (TimeoutError, ClientError, OSError, ValueError):
            return None

    async def scrape(self) -> list[tuple[dict, dict]]:
        """(Node, its kubelet's summary) for every Ready node that answered; cached for a moment."""
        async with self._lock:
            now = time.monotonic()
            if self._cache is not None and now - self._cache[0] < CACHE_SECONDS:
                return self._cache[1]
            nodes = [n for n in await self._list(BY_PLURAL["nodes"]) if _ready(n)]
            summaries = await asyncio.gather(*(self._summary(n) for n in nodes))
            got = [(n, s) for n, s in zip(nodes, summaries, strict=True) if s is not None]
            self._cache = (time.monotonic(), got)
            return got

    # ------------------------------------------------------------------ NodeMetrics
    async def nodes(self, http: web.Request) -> web.Response:
        _only_reads(http)
        name = _name(http)
        sel = LabelSelector.parse(http.query.get("labelSelector"))
        items = []
        for node, summary in await self.scrape():
            md = node["metadata"]
            if (name and md["name"] != name) or not sel.matches(md.get("labels")):
                continue
            s = summary.get("node") or {}
            items.append({"kind": "NodeMetrics", "apiVersion": GV,
                          "metadata": {"name": md["name"], "labels": md.get("labels") or {},
                                       "creationTimestamp": now_rfc3339()},
                          "timestamp": (s.get("cpu") or {}).get("time") or now_rfc3339(),
                          "window": _window(float(s.get("window") or 0)),
                          "usage": {"cpu": cpu_quantity((s.get("cpu") or {}).get("usageNanoCores") or 0),
                                    "memory": memory_quantity((s.get("memory") or {}).get("workingSetBytes") or 0)}})
        return _answer(http, name, "nodes", items, "NodeMetricsList")

    # ------------------------------------------------------------------ PodMetrics
    async def pods(self, http: web.Request) -> web.Response:
        _only_reads(http)
        ns, name = http.match_info.get("namespace"), _name(http)
        sel = LabelSelector.parse(http.query.get("labelSelector"))
        pods = {(p["metadata"].get("namespace"), p["metadata"]["name"]): p
                for p in await self._list(BY_PLURAL["pods"], ns)}
        items = []
        for _node, summary in await self.scrape():
            for ps in summary.get("pods") or []:
                ref = ps.get("podRef") or {}
                pod = pods.get((ref.get("namespace"), ref.get("name")))
                if pod is None or (pod["metadata"].get("uid") != ref.get("uid")):
                    continue  # gone, or an older pod of the same name
                if name and ref.get("name") != name:
                    continue
                labels = pod["metadata"].get("labels") or {}
                if not sel.matches(labels):
                    continue
                containers = ps.get("containers") or []
                # as metrics-server: a pod is reported once every container has a CPU rate
                if not containers or any("usageNanoCores" not in (c.get("cpu") or {}) for c in containers):
                    continue
                items.append({"kind": "PodMetrics", "apiVersion": GV,
                              "metadata": {"name": ref["name"], "namespace": ref["namespace"], "labels": labels,
                                           "creationTimestamp": now_rfc3339()},
                              "timestamp": (ps.get("cpu") or {}).get("time") or now_rfc3339(),
                              "window": _window(float(ps.get("window") or 0)),
                              "containers": [{"name": c["name"], "usage": {
                                  "cpu": cpu_quantity(c["cpu"]["usageNanoCores"]),
                                  "memory": memory_quantity((c.get("memory") or {}).get("workingSetBytes") or 0)}}
                                  for c in containers]})
        items.sort(key=lambda i: (i["metadata"]["namespace"], i["metadata"]["name"]))
        return _answer(http, name, "pods", items, "PodMetricsList")


def _name(http: web.Request) -> str | None:
    name = http.match_info.get("name")
    return unquote(name) if name else None


def _only_reads(http: web.Request) -> None:
    if http.method != "GET":
        raise errors.method_not_allowed()
    if http.query.get("watch") in ("1", "true"):
        raise errors.StatusError(405, "MethodNotAllowed", "metrics.k8s.io serves get and list, not watch")


def _answer(http: web.Request, name: str | None, plural: str, items: list[dict], list_kind: str) -> web.Response:
    if name:
        if not items:
            key = f"{http.match_info['namespace']}/{name}" if "namespace" in http.match_info else name
            raise errors.not_found(plural, GROUP, key)
        return response(dumps(items[0]))
    return response(dumps({"kind": list_kind, "apiVersion": GV, "metadata": {}, "items": items}))


def _guard(handler):  # noqa: ANN001, ANN202 - the routes module's wrapper, imported late to avoid a cycle
    from .routes import answering_errors

    return answering_errors(handler)
