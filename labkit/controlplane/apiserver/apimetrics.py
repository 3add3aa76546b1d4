"""kube-apiserver's ``/metrics``: requests counted by verb, resource and code, and how long they took.

A middleware sees every request once it has its answer. The verb is the Kubernetes one, not the
HTTP method: a GET of a collection is LIST, with ``watch=true`` WATCH; a DELETE of a collection is
DELETECOLLECTION. The series names and labels are kube-apiserver's, so a Prometheus query written
against a real cluster (``sum by (verb) (rate(apiserver_request_total[1m]))``) reads these too.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

disable_created_metrics()  # kube's series have no *_created companions
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# kube-apiserver's buckets for apiserver_request_duration_seconds (a subset)
BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60)


def classify(method: str, path: str, query: dict) -> tuple[str, str, str, str, str, str] | None:
    """(verb, group, version, resource, subresource, scope) of a resource request; None for any other path."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    scope = "cluster"
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) != 2:
        rest, scope = rest[2:], "namespace"
    elif len(rest) == 2 and rest[0] == "namespaces":
        rest = ["namespaces", rest[1]]
    if not rest:
        return None
    resource, name, sub = rest[0], rest[1] if len(rest) > 1 else "", rest[2] if len(rest) > 2 else ""
    if name:
        scope = "resource" if scope == "cluster" else scope
    verb = method.upper()
    if verb == "GET" and not name:
        verb = "WATCH" if query.get("watch") in ("1", "true") else "LIST"
    elif verb == "DELETE" and not name:
        verb = "DELETECOLLECTION"
    elif verb == "PATCH" and "apply-patch" in query.get("_content_type", ""):
        verb = "APPLY"
    if sub in ("exec", "attach", "portforward", "proxy"):
        verb = "CONNECT"
    return verb, group, version, resource, sub, scope


class APIMetrics:
    """The apiserver's registry and the middleware that fills it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["verb", "group", "version", "resource", "subresource", "scope", "component", "code"]
        self.requests = Counter("apiserver_request", "Counter of apiserver requests broken out for each verb, "
                                "dry run value, group, version, resource, scope, component, and HTTP response code.",
                                labels, registry=self.registry)
        self.duration = Histogram("apiserver_request_duration_seconds", "Response latency distribution in seconds "
                                  "for each verb, group, version, resource, subresource, scope and component.",
                                  ["verb", "group", "version", "resource", "subresource", "scope", "component"],
                                  buckets=BUCKETS, registry=self.registry)
        self.inflight = Gauge("apiserver_current_inflight_requests", "Maximal number of currently used inflight "
                              "request limit of this apiserver per request kind in last second.",
                              ["request_kind"], registry=self.registry)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        query = dict(request.query)
        query["_content_type"] = request.headers.get("Content-Type", "")
        what = classify(request.method, request.path, query)
        if what is None:
            return await handler(request)
        kind = "mutating" if request.method not in ("GET", "HEAD", "OPTIONS") else "readOnly"
        gauge = self.inflight.labels(kind)
        gauge.inc()
        t0 = time.perf_counter()
        code = 500
        try:
            resp = await handler(request)
            code = resp.status
            return resp
        except web.HTTPException as exc:
            code = exc.status
            raise
        finally:
            gauge.dec()
            self.requests.labels(*what, "apiserver", str(code)).inc()
            if what[0] not in ("WATCH", "CONNECT"):  # long-running: kube-apiserver leaves them out too
                self.duration.labels(*what, "apiserver").observe(time.perf_counter() - t0)

    async def handle(self, _request: web.Request) -> web.Response:
        """``GET /metrics``: the Prometheus text format."""
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
