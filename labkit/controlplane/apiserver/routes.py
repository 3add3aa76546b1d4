"""Routing: the Kubernetes REST paths as routes of aiohttp's router, and the verb each method maps to.

Under each group version, ``/api/v1`` and ``/apis/GROUP/VERSION``, a resource path has one of
three shapes, namespaced (``.../namespaces/NS/RESOURCE...``) or cluster-scoped:

    .../RESOURCE                  a collection: list, watch (``?watch=1``), create, delete all
    .../RESOURCE/NAME             an object: get, update, patch, delete
    .../RESOURCE/NAME/SUB         a subresource: status, scale, binding, eviction, log, exec, attach

Beside them: discovery (``/api``, ``/apis``, ``/apis/GROUP``, the group versions), OpenAPI
(``/openapi/v2``, ``/openapi/v3[/...]``), ``/version`` and the health checks. Trailing slashes
are ignored. A path no route matches, or one that names a resource this server does not serve,
gets kube-apiserver's Status 404. A route answers every method; the verb decides what is allowed.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from labkit.controlplane.store import Compacted, Unavailable

from . import discovery, errors, subresources
from .codec import dumps
from .errors import StatusError
from .lists import Lists
from .request import Request, response, status_response
from .resources import BY_PATH, ResourceType, group_versions
from .storecalls import StoreCalls
from .verbs import Verbs
from .watchstream import WatchStreams

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SLASH = "{slash:/*}"  # trailing slashes, ignored
SEGMENT = "[^/]*"  # a namespace, resource, name or subresource: anything up to the next slash
GROUP_VERSIONS = ("/api/{version:[^/]+}", "/apis/{group:[^/]+}/{version:[^/]+}")


def answering_errors(handler: Handler) -> Handler:
    """Wrap a handler so that every failure leaves as a Kubernetes Status, never as a bare 500."""
    async def guarded(http: web.Request) -> web.StreamResponse:
        try:
            return await handler(http)
        except StatusError as err:
            return status_response(err)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Unavailable as exc:  # e.g. etcd lost quorum: clients retry, as with kube-apiserver
            return status_response(errors.unavailable(f"the storage backend is unavailable: {exc}"))
        except Compacted as exc:
            return status_response(errors.expired(f"the requested revision has been compacted: {exc}"))
        except Exception as exc:
            log.exception("internal error on %s %s", http.method, http.path)
            return status_response(errors.internal(f"{type(exc).__name__}: {exc}"))
    return guarded


class ResourceRoutes:
    """The resource paths: which resource a URL names, and which verb serves its method."""

    def __init__(self, calls: StoreCalls, verbs: Verbs, lists: Lists, watches: WatchStreams,
                 kubelets: subresources.KubeletClient):
        self.calls, self.verbs, self.lists, self.watches, self.kubelets = calls, verbs, lists, watches, kubelets

    def add_to(self, router: web.UrlDispatcher) -> None:
        """Register every resource route; the order settles which of two matching shapes wins."""
        namespaced = "|".join(sorted({re.escape(rt.plural) for rt in BY_PATH.values() if rt.namespaced}))
        in_namespace = f"/namespaces/{{namespace:{SEGMENT}}}/{{resource:{namespaced}}}"
        for gv in GROUP_VERSIONS:
            router.add_route("*", gv + SLASH, answering_errors(self.resource_list))
            if gv.startswith("/apis/"):  # custom resources come and go: any plural, no core "namespaces" here
                in_namespace = f"/namespaces/{{namespace:{SEGMENT}}}/{{resource:{SEGMENT}}}"
            # namespaced shapes first: /namespaces/NS/pods is a pod list, not a subresource of namespace NS
            for shape, handler in (("", self.collection), (f"/{{name:{SEGMENT}}}", self.object),
                                   (f"/{{name:{SEGMENT}}}/{{sub:{SEGMENT}}}", self.subresource)):
                router.add_route("*", gv + in_namespace + shape + SLASH, answering_errors(handler))
            for shape, handler in ((f"/{{resource:{SEGMENT}}}", self.collection),
                                   (f"/{{resource:{SEGMENT}}}/{{name:{SEGMENT}}}", self.object),
                                   (f"/{{resource:{SEGMENT}}}/{{name:{SEGMENT}}}/{{sub:{SEGMENT}}}",
                                    self.subresource)):
                router.add_route("*", gv + shape + SLASH, answering_errors(handler))

    # ------------------------------------------------------------------ paths -> requests
    @staticmethod
    def _served_version(http: web.Request) -> tuple[str, str]:
        group, version = http.match_info.get("group", ""), http.match_info["version"]
        if version not in group_versions().get(group, []):
            raise errors.path_not_found()
        return group, version

    def _request(self, http: web.Request) -> Request:
        """The resource, namespace, name and subresource a resource path names."""
        group, version = self._served_version(http)
        match = http.match_info
        ns, name, sub = match.get("namespace"), match.get("name"), match.get("sub")
        if any("/" in part for part in (ns, match["resource"], name, sub) if part):  # an escaped slash, %2F
            raise errors.path_not_found()
        rt: ResourceType | None = BY_PATH.get((group, version, match["resource"]))
        if rt is None or (ns is not None and not rt.namespaced) or (ns is None and rt.namespaced and name is not None):
            raise errors.path_not_found()
        if sub is not None and sub not in rt.subresources:
            raise errors.path_not_found()
        return Request(rt, ns, name, sub, http)

    # ------------------------------------------------------------------ method -> verb
    async def resource_list(self, http: web.Request) -> web.Response:
        """``/api/v1``, ``/apis/GROUP/VERSION``: the resources of one group version."""
        group, version = self._served_version(http)
        return response(dumps(discovery.resource_list(group, version)))

    async def collection(self, http: web.Request) -> web.StreamResponse:
        req, m = self._request(http), http.method
        if m == "GET":
            if req.query.get("watch") in ("true", "1"):
                return await self.watches.watch(req)
            return await self.lists.list(req)
        if m == "POST":
            return await self.verbs.create(req)
        if m == "DELETE":
            return await self.verbs.delete_collection(req)
        raise errors.method_not_allowed()

    async def object(self, http: web.Request) -> web.Response:
        req, m = self._request(http), http.method
        if m == "GET":
            return await self.verbs.get(req)
        if m == "PUT":
            return await self.verbs.update(req)
        if m == "PATCH":
            return await self.verbs.patch(req)
        if m == "DELETE":
            return await self.verbs.delete(req)
        raise errors.method_not_allowed()

    async def subresource(self, http: web.Request) -> web.StreamResponse:
        req, m = self._request(http), http.method
        if req.sub == "status":
            if m == "GET":
                return await self.verbs.get(req)
            if m == "PUT":
                return await self.verbs.update(req)
            if m == "PATCH":
                return await self.verbs.patch(req)
        elif req.sub == "scale":
            if m in ("GET", "PUT", "PATCH"):
                return await subresources.scale(self.calls, req)
        elif req.sub == "binding":
            if m == "POST":
                return await subresources.binding(self.calls, req)
        elif req.sub == "log":
            if m == "GET":
                return await subresources.log(self.calls, self.kubelets, req)
        elif req.sub in ("exec", "attach", "portforward"):
            if m in ("GET", "POST"):
                return await subresources.stream(self.calls, self.kubelets, req)
        elif req.sub == "eviction":
            if m == "POST":
                return await subresources.evict(self.calls, req)
        raise errors.method_not_allowed()


# ---------------------------------------------------------------------- the paths beside the resources
async def health(http: web.Request) -> web.Response:
    """``/healthz``, ``/livez``, ``/readyz`` and every check under them."""
    return web.Response(text="ok")


async def version(http: web.Request) -> web.Response:
    return response(dumps(discovery.VERSION_INFO))


async def api_root(http: web.Request) -> web.Response:
    """``/api`` (the core group's versions) and ``/apis`` (every other group), plain or aggregated."""
    core = http.path.rstrip("/") == "/api"
    for choice in http.headers.get("Accept", "").split(","):
        choice = choice.strip()
        if "as=APIGroupDiscoveryList" in choice and "g=apidiscovery.k8s.io" in choice:
            version = "v2" if "v=v2;" in choice + ";" and "v=v2beta1" not in choice else "v2beta1"
            ct = f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
            return response(dumps(discovery.aggregated(core, version)), content_type=ct)
    return response(dumps(discovery.api_versions() if core else discovery.api_group_list()))


async def api_group(http: web.Request) -> web.Response:
    group = http.match_info["group"]
    if group not in group_versions():
        raise errors.path_not_found()
    return response(dumps({"kind": "APIGroup", "apiVersion": "v1", **discovery.api_group(group)}))


async def openapi_v2(http: web.Request) -> web.Response:
    """The v2 document: protobuf (what kubectl asks for) or JSON, with no paths (clients use v3)."""
    if "protobuf" in http.headers.get("Accept", ""):
        return response(discovery.openapi_v2_protobuf(),
                        content_type="application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
    return response(dumps({"swagger": "2.0", "info": {"title": "Kubernetes (labkit)", "version": "v1"},
                           "paths": {}, "definitions": {}}))


async def openapi_v3_root(http: web.Request) -> web.Response:
    return response(dumps(discovery.openapi_root()))


async def openapi_v3(http: web.Request) -> web.Response:
    """``/openapi/v3/api/v1`` and ``/openapi/v3/apis/GROUP/VERSION``: one group version's schemas."""
    group, version = http.match_info.get("group", ""), http.match_info["version"]
    if version not in group_versions().get(group, []):
        raise errors.path_not_found()
    data, _ = discovery.openapi_bytes(group, version)
    return response(data)


async def not_found(http: web.Request) -> web.Response:
    raise errors.path_not_found()


def make_app(resources: ResourceRoutes, body_limit: int, middlewares: tuple = (),
             before: tuple[Callable[[web.UrlDispatcher], None], ...] = ()) -> web.Application:
    """The aiohttp application with every route of the API; ``before`` add routes that win over the
    resource shapes (an API computed on request, such as metrics.k8s.io)."""
    app = web.Application(client_max_size=body_limit, middlewares=list(middlewares))
    router = app.router
    for add in before:
        add(router)
    resources.add_to(router)
    for path, handler in (("/{probe:healthz|livez|readyz}{rest:(/.*)?}", health),
                          ("/version" + SLASH, version),
                          ("/api" + SLASH, api_root),
                          ("/apis" + SLASH, api_root),
                          ("/apis/{group:[^/]+}" + SLASH, api_group),
                          ("/openapi/v2" + SLASH, openapi_v2),
                          ("/openapi/v3" + SLASH, openapi_v3_root),
                          ("/openapi/v3/api/{version:[^/]+}" + SLASH, openapi_v3),
                          ("/openapi/v3/apis/{group:[^/]+}/{version:[^/]+}" + SLASH, openapi_v3),
                          ("/{path:.*}", not_found)):  # last: whatever no other route took
        router.add_route("*", path, answering_errors(handler))
    return app
