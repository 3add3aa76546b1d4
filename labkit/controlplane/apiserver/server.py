"""The HTTP front of the apiserver: Kubernetes REST paths, content negotiation, watch streams.

One aiohttp handler parses ``/api/v1/...`` and ``/apis/<group>/<version>/...`` itself, looks the
resource up in the table (:mod:`.resources`) and calls the registry. Replies are JSON; objects
leave as the bytes the store holds with their resourceVersion spliced in (see :mod:`.codec`).
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import copy
import json
import logging
import threading
import time
from typing import Any

from aiohttp import ClientSession, web

from labkit.controlplane.store import Compacted, KeyExists, Store, Unavailable, open_store

from . import apply as ssa
from . import discovery, errors, subresources, tables
from .attrs import AttrCache, matches
from .codec import decode, dumps, with_rv
from .errors import StatusError
from .indexes import PodsByNode
from .patch import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, apply_patch
from .registry import Registry
from .request import BODY_LIMIT, JSON, TABLE_CT, Request, field_checks, read_body, response, status_response
from .resources import BY_PATH, BY_PLURAL, ResourceType, group_versions
from .selectors import FieldSelector
from .watch import Subscriber, WatchHub

log = logging.getLogger(__name__)


def _success(rt: ResourceType, name: str, uid: str | None = None) -> dict:
    details: dict[str, Any] = {"name": name, "group": rt.group, "kind": rt.plural}
    if uid:
        details["uid"] = uid
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


# DELETE answers with the object for these (as Kubernetes does); with a Status for the others
RETURNS_DELETED_OBJECT = {"pods", "namespaces", "services", "serviceaccounts", "persistentvolumes",
                          "persistentvolumeclaims", "storageclasses"}


class APIServer:
    """kube-apiserver for the subset of Kubernetes labkit serves.

    ``APIServer("memory").start()`` runs it on a background thread (``.url``, ``.stop()``, or use it
    as a context manager); ``python -m labkit.controlplane.apiserver`` runs it as a process.
    """

    def __init__(self, store: str | Store = "memory", host: str = "127.0.0.1", port: int = 0,
                 bookmark_interval: float = 5.0, watch_window: int = 100_000,
                 compact_interval: float | None = 300.0):
        self._own_store = isinstance(store, str)
        self.store: Store = open_store(store) if isinstance(store, str) else store
        self.registry = Registry(self.store)
        self.host, self.port = host, port
        self.bookmark_interval = bookmark_interval
        self.compact_interval = compact_interval
        self._compactor: asyncio.Task | None = None
        self.watch_window = watch_window
        self.attrs = AttrCache()
        self.hub: WatchHub | None = None
        self.pods_by_node: PodsByNode | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._start_error: BaseException | None = None
        # the memory store answers in microseconds: calling it on the loop beats a thread hop; sqlite
        # (an fsync per commit, shared by concurrent writers) and etcd (a network round trip) run on
        # worker threads so that requests overlap
        inline = getattr(self.store, "name", "") == "memory"
        self._pool = None if inline else concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="labkit-api")
        # a sqlite write that is alone in flight runs on the loop too: a hop to a worker thread and
        # back costs more than its fsync. Writes that arrive together go to the workers, where
        # they share one commit (see call_write). Not etcd: a network round trip must not stall the loop.
        self._inline_lone_writes = getattr(self.store, "name", "") == "sqlite"
        self._writes_in_flight = 0
        self._acks: list[tuple[asyncio.Future, Any, BaseException | None]] = []  # see _ack
        self._acks_lock = threading.Lock()
        self.http: ClientSession | None = None
        self.started_at = time.time()

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def make_app(self) -> web.Application:
        """The aiohttp application: one catch-all route, parsed by the server itself."""
        app = web.Application(client_max_size=BODY_LIMIT * 4)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def start_async(self) -> None:
        """Bind the port and start serving on the running event loop."""
        self.loop = asyncio.get_running_loop()
        self.registry.ensure_namespaces()
        self.hub = WatchHub(self.store, self.loop, self.attrs, self.watch_window)
        self.hub.listeners.append(self.registry.watch_namespaces)
        kvs, _ = self.store.list(BY_PLURAL["namespaces"].key_prefix())
        self.registry.known_namespaces.update(kv.key.rsplit("/", 1)[1] for kv in kvs)
        self.pods_by_node = PodsByNode(self.store, self.hub)
        self._warmup = asyncio.ensure_future(self.pods_by_node.ensure())  # build the index off the request path
        if self.compact_interval:
            self._compactor = asyncio.ensure_future(self._compact_periodically(self.compact_interval))
        # long-lived streams (log -f) must not hold a shutdown for a minute
        self._runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False, shutdown_timeout=3.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        self.port = sock.getsockname()[1]
        self._stopped = asyncio.Event()

    async def _compact_periodically(self, interval: float) -> None:
        """Like kube-apiserver: every interval, compact history older than the previous tick.

        So at least one interval of history stays for watchers to resume from; older
        resourceVersions then get 410 Expired and their clients list again.
        """
        previous: int | None = None
        while True:
            await asyncio.sleep(interval)
            try:
                if previous is not None:
                    await self.call(self.store.compact, previous)
                    assert self.hub is not None
                    self.hub.forget_below(previous)
                previous = self.store.revision
            except Exception as exc:  # a busy or unreachable store: try again next time
                log.warning("periodic compaction failed: %s", exc)

    async def stop_async(self) -> None:
        """Stop serving and end every watch stream."""
        if self._compactor is not None:
            self._compactor.cancel()
        if self.hub is not None:
            self.hub.close()
        if self.http is not None:
            await self.http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def start(self) -> APIServer:
        """Serve on a background thread; returns once the port accepts connections."""
        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as exc:  # report bind errors to the caller of start()
                self._start_error = exc
                self._ready.set()
                return
            self._ready.set()
            loop.run_until_complete(self._stopped.wait())
            loop.run_until_complete(self.stop_async())
            loop.close()
        self._thread = threading.Thread(target=run, name="labkit-apiserver", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._start_error is not None:
            raise RuntimeError(f"the apiserver could not start on {self.host}:{self.port}: {self._start_error}")
        return self

    def stop(self) -> None:
        """Stop the background server (and close the store if the server opened it)."""
        if self.loop is not None and self._stopped is not None and self._thread is not None:
            self.loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(10)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        if self._own_store:
            self.store.close()

    def __enter__(self) -> APIServer:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def compact(self, revision: int | None = None) -> int:
        """Compact the store (default: at the current revision) and the watch cache with it.

        kube-apiserver does this every few minutes; afterwards a watch from an older
        resourceVersion is answered with 410 Expired.
        """
        rev = self.store.revision if revision is None else revision
        self.store.compact(rev)
        if self.hub is not None and self.loop is not None:
            fut = asyncio.run_coroutine_threadsafe(self._forget(rev), self.loop)
            if threading.current_thread() is not self._thread:
                fut.result(10)
        return rev

    async def _forget(self, rev: int) -> None:
        assert self.hub is not None
        self.hub.forget_below(rev)

    async def call(self, fn, *args):
        """Run a (blocking) registry call: inline for the memory store, on a worker thread otherwise."""
        if self._pool is None:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def call_write(self, fn, *args):
        """Run a registry write: like :meth:`call`, but on the loop when it is the only write in flight.

        One yield first lets the other writes that arrived in the same batch of requests count
        themselves; if there are any, every write goes to a worker thread and the store's group
        commit shares one fsync between them. A lone write saves the two thread wake-ups instead.
        """
        if self._pool is None:
            return fn(*args)
        self._writes_in_flight += 1
        try:
            if self._inline_lone_writes and await self._alone():
                return fn(*args)
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            self._writes_in_flight -= 1

    async def _alone(self) -> bool:
        """Is this (counted) write the only one in flight, with the store idle? One yield first lets
        the writes that arrived in the same batch of requests count themselves. Never while the
        store is busy writing (a group commit, a compaction): that wait belongs off the loop."""
        await asyncio.sleep(0)
        return self._writes_in_flight == 1 and not getattr(self.store, "writer_busy", True)

    # ------------------------------------------------------------------ routing
    async def _handle(self, http: web.Request) -> web.StreamResponse:
        try:
            return await self._route(http)
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

    async def _route(self, http: web.Request) -> web.StreamResponse:
        path = http.path.rstrip("/") or "/"
        parts = path.strip("/").split("/")
        head = parts[0]
        if head in ("healthz", "livez", "readyz"):
            return web.Response(text="ok")
        if path == "/version":
            return response(dumps(discovery.VERSION_INFO))
        if head == "openapi":
            return self._openapi(parts, http)
        if head not in ("api", "apis"):
            raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")
        accept = http.headers.get("Accept", "")
        if head == "api" and len(parts) == 1:
            return self._discovery_root(True, accept)
        if head == "apis" and len(parts) == 1:
            return self._discovery_root(False, accept)
        if head == "api":
            group, version, rest = "", parts[1], parts[2:]
        else:
            if len(parts) == 2:
                if parts[1] not in group_versions():
                    raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")
                return response(dumps({"kind": "APIGroup", "apiVersion": "v1", **discovery.api_group(parts[1])}))
            group, version, rest = parts[1], parts[2], parts[3:]
        if version not in group_versions().get(group, []):
            raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            return response(dumps(discovery.resource_list(group, version)))
        req = self._parse(group, version, rest, http)
        return await self._dispatch(req)

    def _parse(self, group: str, version: str, rest: list[str], http: web.Request) -> Request:
        not_found = errors.StatusError(404, "NotFound", "the server could not find the requested resource")
        if rest[0] == "namespaces" and len(rest) >= 3:
            rt = BY_PATH.get((group, version, rest[2]))
            if rt is not None and rt.namespaced:
                if len(rest) > 5:
                    raise not_found
                return Request(rt, rest[1], rest[3] if len(rest) > 3 else None, rest[4] if len(rest) > 4 else None,
                               http)
        rt = BY_PATH.get((group, version, rest[0]))
        if rt is None or len(rest) > 3:
            raise not_found
        if rt.namespaced and len(rest) > 1:
            raise not_found
        return Request(rt, None, rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None, http)

    async def _dispatch(self, req: Request) -> web.StreamResponse:
        """Method x (collection | object | subresource) -> the verb that serves it."""
        m = req.http.method
        if req.sub is not None:
            if req.sub not in req.rt.subresources:
                raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")
            if req.sub == "status":
                if m == "GET":
                    return await self._get(req)
                if m in ("PUT", "PATCH"):
                    return await (self._update(req) if m == "PUT" else self._patch(req))
            elif req.sub == "scale":
                if m in ("GET", "PUT", "PATCH"):
                    return await subresources.scale(self, req)
            elif req.sub == "binding":
                if m == "POST":
                    return await subresources.binding(self, req)
            elif req.sub == "log":
                if m == "GET":
                    return await subresources.log(self, req)
            elif req.sub == "eviction":
                if m == "POST":
                    return await subresources.evict(self, req)
            raise errors.method_not_allowed()
        if req.name is None:
            if m == "GET":
                if req.query.get("watch") in ("true", "1"):
                    return await self._watch(req)
                return await self._list(req)
            if m == "POST":
                return await self._create(req)
            if m == "DELETE":
                return await self._delete_collection(req)
            raise errors.method_not_allowed()
        if m == "GET":
            return await self._get(req)
        if m == "PUT":
            return await self._update(req)
        if m == "PATCH":
            return await self._patch(req)
        if m == "DELETE":
            return await self._delete(req)
        raise errors.method_not_allowed()

    # ------------------------------------------------------------------ discovery
    def _discovery_root(self, core: bool, accept: str) -> web.Response:
        for choice in accept.split(","):
            choice = choice.strip()
            if "as=APIGroupDiscoveryList" in choice and "g=apidiscovery.k8s.io" in choice:
                version = "v2" if "v=v2;" in choice + ";" and "v=v2beta1" not in choice else "v2beta1"
                ct = f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
                return response(dumps(discovery.aggregated(core, version)), content_type=ct)
        return response(dumps(discovery.api_versions() if core else discovery.api_group_list()))

    def _openapi(self, parts: list[str], http: web.Request) -> web.Response:
        if parts[:2] == ["openapi", "v3"]:
            if len(parts) == 2:
                return response(dumps(discovery.openapi_root()))
            rest = parts[2:]
            if rest[0] == "api" and len(rest) == 2:
                group, version = "", rest[1]
            elif rest[0] == "apis" and len(rest) == 3:
                group, version = rest[1], rest[2]
            else:
                group, version = "?", "?"
            if version in group_versions().get(group, []):
                data, _ = discovery.openapi_bytes(group, version)
                return response(data)
        if parts[:2] == ["openapi", "v2"] and len(parts) == 2:
            accept = http.headers.get("Accept", "")
            if "protobuf" in accept:
                return response(discovery.openapi_v2_protobuf(),
                                 content_type="application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
            return response(dumps({"swagger": "2.0", "info": {"title": "Kubernetes (labkit)", "version": "v1"},
                                    "paths": {}, "definitions": {}}))
        raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")

    # ------------------------------------------------------------------ bodies
    def _object_reply(self, req: Request, obj: dict, data: bytes, status: int = 200,
                      headers: dict | None = None) -> web.Response:
        if req.wants_table():
            meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            return response(dumps(tables.table(req.rt.plural, [obj], meta, req.query.get("includeObject",
                                                                                             "Metadata"))),
                             status, TABLE_CT, headers)
        return response(data, status, JSON, headers)

    # ------------------------------------------------------------------ verbs
    async def _get(self, req: Request) -> web.Response:
        kv = await self.call(self.registry.get_kv, req.rt, req.ns, req.name)
        data = with_rv(kv.value, kv.mod_revision)
        if req.wants_table():
            return self._object_reply(req, decode(kv.value, kv.mod_revision), data)
        return response(data)

    async def _create(self, req: Request) -> web.Response:
        body, _ = await read_body(req)
        headers = field_checks(req, body)
        obj, data = await self._store_create(req, body)
        return self._object_reply(req, obj, data, 201, headers)

    def _ack(self, fut: asyncio.Future, kv: Any, err: BaseException | None) -> None:
        """On the store's committing thread: hand a create's outcome to the loop.

        The acks of one commit arrive together; the first schedules one callback on the loop
        that settles them all, so a commit of many creates wakes the loop once.
        """
        with self._acks_lock:
            self._acks.append((fut, kv, err))
            first = len(self._acks) == 1
        if first and self.loop is not None:
            try:
                self.loop.call_soon_threadsafe(self._settle_acks)
            except RuntimeError:  # the loop closed: the server is stopping
                pass

    def _settle_acks(self) -> None:
        with self._acks_lock:
            acks, self._acks = self._acks, []
        for fut, kv, err in acks:
            if not fut.done():  # the client may have gone away meanwhile
                if err is not None:
                    fut.set_exception(err)
                else:
                    fut.set_result(kv)

    async def _store_create(self, req: Request, body: Any) -> tuple[dict, bytes]:
        """Create through the registry - with the store's own group commit when it has one.

        A store with ``create_async`` (sqlite) is not called from a worker thread per request when
        creates come in together: the loop prepares each object (defaults, validation, encoding)
        and queues it; the store's committer thread commits all that are queued in one
        transaction, one fsync, and the loop answers each request once that commit is on disk.
        A lone create runs on the loop (see :meth:`call_write`).
        """
        submit = getattr(self.store, "create_async", None)
        if submit is None or req.dry_run or req.rt.plural == "services":  # services read the store to allocate
            return await self.call_write(self.registry.create, req.rt, req.ns, body, req.dry_run)
        self._writes_in_flight += 1
        try:
            if await self._alone():
                return self.registry.create(req.rt, req.ns, body)
            obj, value = self.registry.prepare_create(req.rt, req.ns, body)
            acked: asyncio.Future = asyncio.get_running_loop().create_future()
            name = obj["metadata"]["name"]
            submit(req.rt.key(req.ns, name), value, lambda kv, err: self._ack(acked, kv, err))
            try:
                kv = await acked
            except KeyExists:
                raise errors.already_exists(req.rt.plural, req.rt.group, name) from None
            except Unavailable as exc:
                raise errors.unavailable(f"the storage backend is unavailable: {exc}") from exc
            return self.registry.created(obj, value, kv)
        finally:
            self._writes_in_flight -= 1

    async def _update(self, req: Request) -> web.Response:
        body, _ = await read_body(req)
        headers = field_checks(req, body)
        obj, data = await self.call_write(self.registry.update, req.rt, req.ns, req.name, body, req.sub,
                                          req.dry_run)
        return self._object_reply(req, obj, data, 200, headers)

    async def _patch(self, req: Request) -> web.Response:
        body, ct = await read_body(req, allow_patch=True)
        if ct == APPLY_PATCH:
            return await self._server_side_apply(req, body)
        if ct not in (MERGE_PATCH, STRATEGIC_PATCH, JSON_PATCH):
            raise errors.unsupported_media_type(ct)
        if ct != JSON_PATCH and not isinstance(body, dict):
            raise errors.bad_request("a merge patch must be a JSON object")
        headers: dict = {}

        def patcher(current: dict) -> dict:
            new = apply_patch(ct, current, body)
            headers.update(field_checks(req, new))
            return new
        obj, data = await self.call_write(self.registry.patch, req.rt, req.ns, req.name, patcher, req.sub,
                                          req.dry_run)
        return self._object_reply(req, obj, data, 200, headers)

    async def _server_side_apply(self, req: Request, body: Any) -> web.Response:
        """``kubectl apply --server-side``: create the object or apply the configuration to it, and
        remember the applied fields in managedFields (see :mod:`.apply`; no conflict detection).
        """
        manager = req.query.get("fieldManager")
        if not manager:
            raise errors.bad_request("PATCH requests for apply must set a fieldManager")
        if not isinstance(body, dict):
            raise errors.bad_request("an apply configuration must be an object")
        headers = field_checks(req, body)
        if req.sub is None:
            meta = {**(body.get("metadata") or {}), "name": req.name}
            meta["managedFields"] = [ssa.entry(manager, req.rt.group_version, ssa.field_set(body, top=True))]
            try:
                fresh = copy.deepcopy({**body, "metadata": meta})  # creating defaults it in place
                obj, data = await self.call(self.registry.create, req.rt, req.ns, fresh, req.dry_run)
                return self._object_reply(req, obj, data, 201, headers)
            except StatusError as err:
                if err.reason != "AlreadyExists":
                    raise

        def patcher(current: dict) -> dict:
            rv = current["metadata"]["resourceVersion"]
            if req.sub is None:
                new = ssa.apply(current, body, manager, req.rt.group_version)
            else:
                new = apply_patch(STRATEGIC_PATCH, current, body)
            new.setdefault("metadata", {})["resourceVersion"] = rv
            field_checks(req, new)
            return new
        obj, data = await self.call(self.registry.patch, req.rt, req.ns, req.name, patcher, req.sub, req.dry_run)
        return self._object_reply(req, obj, data, 200, headers)

    async def _delete_options(self, req: Request) -> dict:
        options: dict = {}
        if req.http.can_read_body:
            body, _ = await read_body(req)
            if isinstance(body, dict):
                options = body
            elif body is not None:
                raise errors.bad_request("DeleteOptions must be an object")
        grace = req.int_param("gracePeriodSeconds")
        if grace is not None:
            options["gracePeriodSeconds"] = grace
        g = options.get("gracePeriodSeconds")
        if g is not None and (isinstance(g, bool) or not isinstance(g, int)):
            raise errors.bad_request("DeleteOptions.gracePeriodSeconds must be an integer")
        if not isinstance(options.get("preconditions") or {}, dict):
            raise errors.bad_request("DeleteOptions.preconditions must be an object")
        if req.query.get("propagationPolicy"):
            options["propagationPolicy"] = req.query["propagationPolicy"]
        if options.get("propagationPolicy") not in (None, "Background", "Foreground", "Orphan"):
            raise errors.bad_request(f"invalid propagationPolicy {options['propagationPolicy']!r}: use "
                                     "Background, Foreground or Orphan")
        return options

    async def _delete(self, req: Request) -> web.Response:
        options = await self._delete_options(req)
        # deleting a namespace deletes everything in it: never on the loop
        call = self.call if req.rt.plural == "namespaces" else self.call_write
        obj, data, gone = await call(self.registry.delete, req.rt, req.ns, req.name, options, req.dry_run)
        if req.rt.plural in RETURNS_DELETED_OBJECT or not gone:
            return response(data, 200 if gone or req.rt.plural == "pods" else 202)
        return response(dumps(_success(req.rt, req.name or "", obj["metadata"].get("uid"))))

    async def _delete_collection(self, req: Request) -> web.Response:
        options = await self._delete_options(req)
        lsel, fsel = req.selectors()
        kvs, _ = await self.call(self.registry.list_page, req.rt, req.ns, None, None, None)
        for kv in kvs:
            if matches(self.attrs.get(req.rt, kv.key, kv.mod_revision, kv.value), lsel, fsel):
                obj = decode(kv.value)
                try:
                    await self.call(self.registry.delete, req.rt, obj["metadata"].get("namespace"),
                                     obj["metadata"]["name"], dict(options), req.dry_run)
                except StatusError as err:
                    if err.code != 404:
                        raise
        return response(dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}))

    # ------------------------------------------------------------------ list
    async def _list(self, req: Request) -> web.Response:
        lsel, fsel = req.selectors()
        limit = req.int_param("limit") or None
        token = req.query.get("continue")
        start_after, rev = None, None
        if token:
            try:
                state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
                rev, start_after = int(state["rv"]), state["start"]
            except (ValueError, KeyError, TypeError):
                raise errors.bad_request("invalid continue token") from None
        if not token and req.query.get("resourceVersionMatch") == "Exact":
            rv_text = req.query.get("resourceVersion", "")
            if not rv_text.isdigit() or rv_text == "0":
                raise errors.bad_request("resourceVersionMatch=Exact needs a resourceVersion greater than 0")
            rev = int(rv_text)
            if rev > self.store.revision:
                raise errors.StatusError(504, "Timeout", f"Too large resource version: {rev}, current: "
                                         f"{self.store.revision}")
            if rev < (getattr(self.store, "compact_revision", 0) or 0):
                raise errors.expired(f"too old resource version: {rev} ({self.store.compact_revision})")
        filtered = not (lsel.empty and fsel.empty)
        prefix = req.rt.key_prefix(req.ns)
        if start_after is not None and not start_after.startswith(prefix):
            raise errors.bad_request("the continue token does not belong to this list")
        items: list = []
        more_key = None
        indexed = None if token or rev is not None else await self._indexed(req, fsel)
        if indexed is not None:
            kvs, rev = indexed
            items = [kv for kv in kvs if matches(self.attrs.get(req.rt, kv.key, kv.mod_revision, kv.value),
                                                 lsel, fsel)]
            if limit and len(items) > limit:
                more_key = items[limit - 1].key
                items = items[:limit]
        else:
            page = (limit + 1) if limit and not filtered else max(2 * (limit or 0), 1000) if limit else None
            while True:
                kvs, rev = await self.call(self.registry.list_page, req.rt, req.ns, rev, page, start_after)
                for kv in kvs:
                    if filtered and not matches(self.attrs.get(req.rt, kv.key, kv.mod_revision, kv.value),
                                                lsel, fsel):
                        continue
                    if limit and len(items) == limit:
                        more_key = items[-1].key
                        break
                    items.append(kv)
                if more_key is not None or page is None or len(kvs) < page:
                    break
                start_after = kvs[-1].key
        meta: dict[str, Any] = {"resourceVersion": str(rev)}
        if more_key is not None:
            meta["continue"] = base64.urlsafe_b64encode(dumps({"rv": rev, "start": more_key})).decode().rstrip("=")
        if req.wants_table():
            objs = [decode(kv.value, kv.mod_revision) for kv in items]
            return response(dumps(tables.table(req.rt.plural, objs, meta, req.query.get("includeObject",
                                                                                          "Metadata"))),
                             content_type=TABLE_CT)
        head = dumps({"kind": req.rt.list_kind, "apiVersion": req.rt.group_version, "metadata": meta})
        body = b"".join((head[:-1], b',"items":[', b",".join(with_rv(kv.value, kv.mod_revision) for kv in items),
                         b"]}"))
        return response(body)

    async def _indexed(self, req: Request, fsel: FieldSelector):
        """(kvs, revision) from a point lookup or the pods-by-node index, or None to scan."""
        name = fsel.name_equals()
        if name is not None and (req.ns is not None or not req.rt.namespaced):
            return await self.call(self._point_list, req.rt, req.ns, name)
        node = fsel.equals("spec.nodeName") if req.rt.plural == "pods" else None
        if node is None or self.pods_by_node is None or not await self.pods_by_node.ensure():
            return None
        # the index follows the store through the watch hub: let it catch up with writes that were
        # acknowledged before this request, or a just-deleted pod could still be listed
        if not await self.hub.caught_up(await self.call(lambda: self.store.revision)):
            return None
        keys, rev = self.pods_by_node.lookup(node, req.ns)
        return await self.call(self._get_many, keys, rev)

    def _point_list(self, rt: ResourceType, ns: str | None, name: str):
        rev = self.store.revision
        kv = self.store.get(rt.key(ns, name), rev)
        return ([kv] if kv is not None else []), rev

    def _get_many(self, keys: list[str], rev: int):
        out = []
        for key in keys:
            kv = self.store.get(key, rev)
            if kv is not None:
                out.append(kv)
        return out, rev

    # ------------------------------------------------------------------ watch
    async def _watch(self, req: Request) -> web.StreamResponse:
        assert self.hub is not None
        lsel, fsel = req.selectors()
        rv_param = req.query.get("resourceVersion")
        timeout = req.int_param("timeoutSeconds")
        bookmarks = req.query.get("allowWatchBookmarks") in ("true", "1")
        send_initial = req.query.get("sendInitialEvents") in ("true", "1")
        as_table = req.wants_table()
        include = req.query.get("includeObject", "Metadata")
        initial: list = []
        if rv_param in (None, "", "0") or send_initial:
            indexed = await self._indexed(req, fsel)
            if indexed is not None:
                kvs, from_rev = indexed
            else:
                kvs, from_rev = await self.call(self.registry.list_page, req.rt, req.ns, None, None, None)
            initial = [kv for kv in kvs if matches(self.attrs.get(req.rt, kv.key, kv.mod_revision, kv.value),
                                                   lsel, fsel)]
        else:
            try:
                from_rev = int(rv_param)
            except ValueError:
                raise errors.bad_request(f"invalid resourceVersion {rv_param!r}") from None
        resp = web.StreamResponse(status=200)
        resp.headers["Content-Type"] = TABLE_CT if as_table else JSON
        resp.enable_chunked_encoding()
        await resp.prepare(req.http)
        first = [True]

        def line(kind: str, value: bytes | None = None, rev: int = 0, obj_bytes: bytes | None = None) -> bytes:
            if as_table:
                obj = decode(value, rev) if value is not None else json.loads(obj_bytes or b"{}")
                t = tables.table(req.rt.plural, [obj], {"resourceVersion": str(rev)}, include, headers=True)
                first[0] = False
                return b'{"type":"%s","object":%s}\n' % (kind.encode(), dumps(t))
            if obj_bytes is None:
                obj_bytes = with_rv(value, rev)  # type: ignore[arg-type]
            return b'{"type":"%s","object":%s}\n' % (kind.encode(), obj_bytes)

        try:
            sub: Subscriber = self.hub.subscribe(req.rt, req.ns, lsel, fsel, from_rev)
        except StatusError as err:
            await resp.write(b'{"type":"ERROR","object":%s}\n' % dumps(err.status()))
            await resp.write_eof()
            return resp
        try:
            if initial:
                await resp.write(b"".join(line("ADDED", kv.value, kv.mod_revision) for kv in initial))
            if send_initial:
                await resp.write(self._bookmark(req.rt, from_rev, initial_end=True))
            deadline = time.monotonic() + timeout if timeout else None
            while True:
                while sub.pending:
                    batch = []
                    while sub.pending and len(batch) < 500:
                        kind, ev = sub.pending.popleft()
                        if as_table:
                            batch.append(line(kind, ev.value, ev.revision))
                        else:
                            batch.append(line(kind, obj_bytes=ev.object_bytes()))
                    await resp.write(b"".join(batch))
                if sub.error is not None:
                    await resp.write(b'{"type":"ERROR","object":%s}\n' % dumps(sub.error.status()))
                    break
                if sub.ended:
                    break
                wait = self.bookmark_interval
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    wait = min(wait, left)
                sub.wake.clear()
                if sub.pending or sub.error is not None or sub.ended:
                    continue
                try:
                    await asyncio.wait_for(sub.wake.wait(), wait)
                except TimeoutError:
                    transport = req.http.transport
                    if transport is None or transport.is_closing():
                        break
                    if bookmarks and not sub.pending:
                        # a watch replaying old history on its own store watch may only vouch for
                        # what it has delivered; a watch-cache watcher has seen everything up to the hub
                        rev = sub.last_rev if sub.store_watch is not None else max(sub.last_rev, self.hub.revision)
                        await resp.write(self._bookmark(req.rt, rev))
            await resp.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            sub.close()
        return resp

    @staticmethod
    def _bookmark(rt: ResourceType, rev: int, initial_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(rev)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return b'{"type":"BOOKMARK","object":%s}\n' % dumps({"kind": rt.kind, "apiVersion": rt.group_version,
                                                              "metadata": meta})

    # ------------------------------------------------------------------ subresources
