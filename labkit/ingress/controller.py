"""labkit's ingress controller: an HTTP reverse proxy on loopback that the Ingress objects program.

Like ingress-nginx it is an ordinary API client. Informers watch Ingresses, IngressClasses,
Services and Endpoints; every change rebuilds the route table and the upstream pool. Requests
are matched by Host header and path (``routing.py``) and sent, round-robin, to a ready endpoint
of the backend Service (``upstreams.py``) with aiohttp's client; aiohttp's server answers them.
No rule: 404. No ready endpoint: 503. Ingresses of its class (``spec.ingressClassName``, or none
when its IngressClass carries the default-class annotation) get ``status.loadBalancer.ingress``
set to the gateway's address.

    python -m labkit.ingress --kubeconfig KC --port 8080 [--class labkit]
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from labkit.client import Client, KubeConfig
from labkit.client.informer import Informer
from labkit.client.rest import ApiError

from .routing import Backend, RouteTable
from .upstreams import Endpoint, NodeSockets, UpstreamPool

log = logging.getLogger(__name__)

CONTROLLER_NAME = "labkit.dev/ingress-controller"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "host", "content-length"}
LISTEN = "127.0.0.1"


def _node_netns(kubeconfig: KubeConfig | str | None) -> Callable[[str], str]:
    from labkit.node.cni.topology import NODE_NS_PREFIX
    from labkit.node.scope import cluster_scope, node_id

    scope = cluster_scope(kubeconfig)
    return lambda node: f"/run/netns/{NODE_NS_PREFIX}{node_id(node, scope)}"


class IngressController:
    """Serves the Ingresses of one class on ``127.0.0.1:port`` (0: a free port, see ``.port``)."""

    def __init__(self, kubeconfig: KubeConfig | str | None, port: int = 0, ingress_class: str = "labkit",
                 address: str = LISTEN):
        self.kubeconfig = kubeconfig
        self.port = port
        self.ingress_class = ingress_class
        self.address = address
        self.routes = RouteTable([])
        self.pool = UpstreamPool()
        self.last_error: str | None = None
        self.ready = threading.Event()
        self._sockets = NodeSockets(_node_netns(kubeconfig))
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task | None = None
        self._informers: dict[str, Informer] = {}
        self._written: dict[str, str] = {}  # ingress key -> address written to its status

    # --- which Ingresses are ours ---------------------------------------
    def _ours(self, ing: dict) -> bool:
        cls = (ing.get("spec") or {}).get("ingressClassName")
        if cls:
            return cls == self.ingress_class
        mine = self._informers["ingressclasses"].get(self.ingress_class) if self._informers else None
        return bool(mine and (mine["metadata"].get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true")

    def _rebuild(self) -> None:
        inf = self._informers
        ours = [i for i in inf["ingresses"].list() if self._ours(i)]
        self.routes = RouteTable(ours)
        backends = {p.backend for paths in self.routes.hosts.values() for p in paths}
        if self.routes.default:
            backends.add(self.routes.default)
        self.pool.update(backends, inf["services"].cache, inf["endpoints"].cache)

    # --- the proxy ----------------------------------------------------------
    def _socket_factory(self, addr_info) -> socket.socket:
        family, _, _, _, sockaddr = addr_info
        sock = self._sockets.socket(self.pool.node_of.get(sockaddr[0]), family)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    async def handle(self, request: web.Request) -> web.StreamResponse:
        backend = self.routes.match(request.headers.get("Host", ""), request.path)
        if backend is None:
            return web.Response(status=404, text=f"404 no Ingress rule for host {request.host!r} path "
                                                 f"{request.path!r}\n")
        ep = self.pool.pick(backend)
        if ep is None:
            return web.Response(status=503, text=f"503 Service {backend} has no ready endpoints\n")
        self.pool.begin(ep)
        try:
            return await self._forward(request, backend, ep)
        finally:
            self.pool.end(ep)

    async def _forward(self, request: web.Request, backend: Backend, ep: Endpoint) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Host"] = request.headers.get("Host", "")
        peer = request.remote or ""
        prior = request.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
        headers["X-Forwarded-Host"] = request.headers.get("Host", "")
        headers["X-Forwarded-Proto"] = request.scheme
        body = request.content if request.body_exists else None
        assert self._session is not None
        try:
            async with self._session.request(request.method, f"http://{ep}{request.rel_url}", headers=headers,
                                             data=body, allow_redirects=False) as up:
                out_headers = {k: v for k, v in up.headers.items() if k.lower() not in HOP_BY_HOP}
                if up.content_length is not None and up.content_length <= 1 << 20:
                    return web.Response(status=up.status, headers=out_headers, body=await up.read())
                resp = web.StreamResponse(status=up.status, headers=out_headers)
                await resp.prepare(request)
                async for chunk in up.content.iter_any():
                    await resp.write(chunk)
                await resp.write_eof()
                return resp
        except (aiohttp.ClientError, OSError) as exc:
            log.warning("upstream %s for %s failed: %s", ep, backend, exc)
            return web.Response(status=502, text=f"502 upstream {ep} of Service {backend} failed: {exc}\n")

    # --- status -----------------------------------------------------------
    async def _write_status(self, client: Client) -> None:
        for ing in self._informers["ingresses"].list():
            if not self._ours(ing):
                continue
            md = ing["metadata"]
            key = f"{md.get('namespace')}/{md['name']}"
            lb = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            if [x.get("ip") for x in lb] == [self.address]:
                continue
            try:
                await client.patch("ingresses", md["name"], {"status": {"loadBalancer": {"ingress": [
                    {"ip": self.address}]}}}, md.get("namespace"), sub="status")
                self._written[key] = self.address
            except ApiError as exc:
                if exc.code != 404:
                    log.warning("status of Ingress %s: %s", key, exc)

    # --- lifecycle --------------------------------------------------------
    async def run(self, started: Callable[[], Awaitable[None] | None] | None = None) -> None:
        """Informers, then the server; returns when cancelled."""
        changed = asyncio.Event()
        async with Client(self.kubeconfig, user_agent="labkit-ingress-controller") as client:
            for res in ("ingresses", "ingressclasses", "services", "endpoints"):
                inf = self._informers[res] = Informer(client, res)
                inf.add_handler(lambda *_: changed.set(), lambda *_: changed.set(), lambda *_: changed.set())
            tasks = [asyncio.create_task(inf.run()) for inf in self._informers.values()]
            connector = aiohttp.TCPConnector(limit=0, socket_factory=self._socket_factory, keepalive_timeout=15)
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                                  timeout=aiohttp.ClientTimeout(total=None, connect=5))
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self.handle)
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, self.address, self.port, reuse_address=True)
            try:
                for inf in self._informers.values():
                    await inf.wait_synced()
                self._rebuild()
                await site.start()
                self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
                self.ready.set()
                log.info("ingress controller for class %s on http://%s:%d", self.ingress_class, self.address,
                         self.port)
                while True:
                    await self._write_status(client)
                    await changed.wait()
                    changed.clear()
                    self._rebuild()
            finally:
                await runner.cleanup()  # stops accepting, lets requests in flight finish
                await self._session.close()
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    def start(self, timeout: float = 30.0) -> IngressController:
        """Run in a background thread (tests, notebooks); returns once it serves."""
        self._loop = asyncio.new_event_loop()

        def _main() -> None:
            asyncio.set_event_loop(self._loop)
            self._task = self._loop.create_task(self.run())
            try:
                self._loop.run_until_complete(self._task)
            except asyncio.CancelledError:
                pass
            except Exception as exc:  # surfaced through last_error and start()'s timeout
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("ingress controller stopped")
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=_main, name="labkit-ingress", daemon=True)
        self._thread.start()
        if not self.ready.wait(timeout):
            self.stop()
            raise RuntimeError(f"the ingress controller did not start within {timeout:.0f} s: {self.last_error}")
        return self

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def call(self, fn: Callable[[], object]) -> object:
        """Run ``fn`` on the controller's loop (to read its state consistently) and return its result."""
        assert self._loop is not None
        fut: asyncio.Future = asyncio.run_coroutine_threadsafe(self._call(fn), self._loop)
        return fut.result(10)

    @staticmethod
    async def _call(fn: Callable[[], object]) -> object:
        return fn()

    def stop(self) -> None:
        if self._loop and self._task and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._task.cancel)
        if self._thread:
            self._thread.join(timeout=10)
        self._sockets.close()

    def __enter__(self) -> IngressController:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ingress_class(name: str = "labkit", default: bool = False) -> dict:
    """The IngressClass object this controller serves."""
    md: dict = {"name": name}
    if default:
        md["annotations"] = {DEFAULT_CLASS_ANNOTATION: "true"}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": md,
            "spec": {"controller": CONTROLLER_NAME}}
