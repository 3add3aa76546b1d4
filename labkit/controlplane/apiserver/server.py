"""kube-apiserver's lifecycle: open the store, build the watch cache and the routes, serve, compact, stop.

What happens to one request lives beside this module: :mod:`.routes` (which URL names what),
:mod:`.verbs` (get, create, update, patch, delete), :mod:`.lists` (pages and indexes),
:mod:`.watchstream` (watch streams) and :mod:`.subresources`; :mod:`.storecalls` decides how each
call reaches the store. Replies are JSON; objects leave as the bytes the store holds with their
resourceVersion spliced in (see :mod:`.codec`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time

from aiohttp import web

from labkit.controlplane.store import Store, open_store

from . import priority
from .auth.setup import check as check_auth
from .auth.setup import make_filter
from .auth.tlsconfig import TLSConfig
from .customresources import CustomResources
from .indexes import PodsByNode
from .inflight import InFlightLimit
from .lists import Lists
from .registry import Registry
from .request import BODY_LIMIT
from .resources import BY_PLURAL
from .routes import ResourceRoutes, make_app
from .selectable import AttrCache
from .storecalls import StoreCalls
from .subresources import KubeletClient
from .verbs import Verbs
from .watch import MAX_BACKLOG, WatchHub
from .watchstream import WatchStreams

log = logging.getLogger(__name__)


class APIServer:
    """kube-apiserver for the subset of Kubernetes labkit serves.

    ``APIServer("memory").start()`` runs it on a background thread (``.url``, ``.stop()``, or use it
    as a context manager); ``python -m labkit.controlplane.apiserver`` runs it as a process.
    """

    def __init__(self, store: str | Store = "memory", host: str = "127.0.0.1", port: int = 0,
                 bookmark_interval: float = 5.0, watch_window: int = 100_000,
                 compact_interval: float | None = 300.0, max_requests_inflight: int = 400,
                 max_mutating_requests_inflight: int = 200, max_watches: int | None = None,
                 watch_backlog: int = MAX_BACKLOG, *, tls: TLSConfig | None = None,
                 token_file: str | os.PathLike | None = None, authorization_mode: str | tuple[str, ...] = "AlwaysAllow",
                 service_account_key_file: str | os.PathLike | None = None):
        # who may connect and what they may do (auth/): the default is loopback, plain HTTP, no
        # authentication; any other address needs TLS, a token file and an authorizer (ValueError)
        self.auth_options = check_auth(host, tls, token_file, authorization_mode)
        self.auth_options.service_account_key_file = str(service_account_key_file) if service_account_key_file else None
        self.auth = None  # the AuthFilter, built at start
        # kube-apiserver's defaults; 0 turns a limit off (see inflight.py)
        self.inflight = InFlightLimit(max_requests_inflight, max_mutating_requests_inflight, max_watches)
        self.watch_backlog = watch_backlog  # events one watcher may fall behind before it is closed
        self._own_store = isinstance(store, str)
        self.store: Store = open_store(store) if isinstance(store, str) else store
        self.registry = Registry(self.store)
        self.crds = CustomResources(self.store)
        self.calls = StoreCalls(self.store, self.registry)
        self.host, self.port = host, port
        self.bookmark_interval = bookmark_interval
        self.compact_interval = compact_interval
        self._compactor: asyncio.Task | None = None
        self.watch_window = watch_window
        self.attrs = AttrCache()
        self.hub: WatchHub | None = None
        self.pods_by_node: PodsByNode | None = None
        self.kubelets = KubeletClient()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._start_error: BaseException | None = None
        self.started_at = time.time()

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        scheme = "https" if self.auth_options.tls is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def make_app(self) -> web.Application:
        """The aiohttp application with every route (see :mod:`.routes`); needs the watch cache."""
        assert self.hub is not None and self.pods_by_node is not None, "start_async() builds the watch cache first"
        lists = Lists(self.calls, self.attrs, self.hub, self.pods_by_node)
        watches = WatchStreams(self.calls, self.attrs, self.hub, lists, self.bookmark_interval)
        routes = ResourceRoutes(self.calls, Verbs(self.calls, self.attrs, self.crds), lists, watches, self.kubelets)
        if self.auth is None:
            self.auth = make_filter(self, self.auth_options)
        return make_app(routes, BODY_LIMIT * 4, (self.inflight.middleware, self.auth.middleware))

    async def start_async(self) -> None:
        """Bind the port and start serving on the running event loop."""
        self.loop = self.calls.loop = asyncio.get_running_loop()
        self.registry.ensure_namespaces()
        priority.ensure_system_classes(self.registry, BY_PLURAL["priorityclasses"])
        self.crds.load()
        self.hub = WatchHub(self.store, self.loop, self.attrs, self.watch_window, self.watch_backlog)
        self.hub.listeners.append(self.registry.watch_namespaces)
        self.hub.listeners.append(self.crds.watch)
        self.hub.listeners.append(self.registry.priority_classes.watch)
        kvs, _ = self.store.list(BY_PLURAL["namespaces"].key_prefix())
        self.registry.known_namespaces.update(kv.key.rsplit("/", 1)[1] for kv in kvs)
        self.pods_by_node = PodsByNode(self.store, self.hub)
        self._warmup = asyncio.ensure_future(self.pods_by_node.ensure())  # build the index off the request path
        if self.compact_interval:
            self._compactor = asyncio.ensure_future(self._compact_periodically(self.compact_interval))
        # long-lived streams (log -f) must not hold a shutdown for a minute
        # request bodies are read as sent: kube-apiserver does not decompress them either, and a
        # corrupt gzip body must be a 400 from the decoder, not an error inside aiohttp
        self._runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False, shutdown_timeout=3.0,
                                     auto_decompress=False)
        await self._runner.setup()
        tls = self.auth_options.tls
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True,
                           ssl_context=tls.server_context() if tls is not None else None)
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
                    await self.calls.call(self.store.compact, previous)
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
        await self.kubelets.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self.crds.close()

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
        self.calls.shutdown()
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
