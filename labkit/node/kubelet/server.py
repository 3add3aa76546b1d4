"""The kubelet's own HTTP port: container logs for ``kubectl logs`` (via the apiserver), health, pods,
and the streams of ``kubectl exec`` and ``attach``.

The apiserver finds it from the Node's ``status.daemonEndpoints.kubeletEndpoint.Port`` and
``InternalIP`` address and forwards ``pods/log`` requests to ``/containerLogs/<ns>/<pod>/<container>``,
``pods/exec`` to ``/exec/<ns>/<pod>/<container>`` and ``pods/attach`` to ``/attach/...``. For exec the
kubelet asks the runtime (CRI ``Exec``) for a streaming URL and relays the WebSocket to it.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from aiohttp import ClientSession, ClientTimeout, WSMsgType, web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from labkit.errors import LabkitError
from labkit.node.kubelet import containers as C
from labkit.runtime.base import ContainerState
from labkit.streams import channels as ch
from labkit.streams import relay

if TYPE_CHECKING:
    from collections.abc import Mapping

    from labkit.node.kubelet.nodecontext import NodeContext
    from labkit.node.kubelet.podworker import PodRecord
    from labkit.node.kubelet.stats import Stats


def _find(records: Mapping[str, PodRecord], ns: str, pod: str, container: str, previous: bool):
    for rec in records.values():
        md = rec.pod["metadata"]
        if md["name"] == pod and md.get("namespace", "default") == ns:
            cs = (rec.last if previous else rec.current).get(container)
            if cs is None and not container:
                cs = next(iter((rec.last if previous else rec.current).values()), None)
            return rec, cs
    return None, None


def _tail(data: bytes, lines: str | None) -> bytes:
    if not lines:
        return data
    n = int(lines)
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-n:]) if n > 0 else b""


async def start_server(k: NodeContext, records: Mapping[str, PodRecord], port: int = 0,
                       stats: Stats | None = None) -> tuple[web.AppRunner, int]:
    """Serve the node's pods (``records``, by pod uid, as the kubelet keeps them) on ``port``;
    with ``stats``, also the Summary API and the Prometheus series."""
    app = web.Application()

    async def logs(request: web.Request) -> web.StreamResponse:
        ns, pod, container = request.match_info["ns"], request.match_info["pod"], request.match_info["container"]
        q = request.query
        rec, cs = _find(records, ns, pod, container, q.get("previous") == "true")
        if cs is None:
            return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
                                      "reason": "NotFound",
                                      "message": f'container "{container}" in pod "{pod}" is not running on '
                                                 f"node {k.node_name}"}, status=404)
        try:
            data = await k.call_runtime(k.runtime.logs, cs.id)
        except LabkitError as exc:
            return web.Response(status=500, text=str(exc))
        if q.get("follow") != "true":
            return web.Response(body=_tail(data, q.get("tailLines")), content_type="text/plain")
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(request)
        await resp.write(_tail(data, q.get("tailLines")))
        sent = len(data)
        while True:
            await asyncio.sleep(0.5)
            try:
                st = await k.call_runtime(k.runtime.container_status, cs.id)
                data = await k.call_runtime(k.runtime.logs, cs.id)
            except LabkitError:
                break
            if len(data) > sent:
                await resp.write(data[sent:])
                sent = len(data)
            if st.state == ContainerState.EXITED:
                break
        await resp.write_eof()
        return resp

    sessions: list[ClientSession] = []

    def session() -> ClientSession:
        if not sessions:
            sessions.append(ClientSession(timeout=ClientTimeout(total=None, sock_connect=5)))
        return sessions[0]

    async def open_stream(request: web.Request) -> tuple[web.WebSocketResponse | None, str, object]:
        """Upgrade the apiserver's connection; errors after this point travel on the error channel."""
        ws = web.WebSocketResponse(protocols=ch.PROTOCOLS, max_msg_size=relay.MAX_MESSAGE, autoping=True)
        ready = ws.can_prepare(request)
        if not ready.ok or ready.protocol not in ch.PROTOCOLS:
            return None, "", web.Response(status=400, text=f"expected a WebSocket with one of {', '.join(ch.PROTOCOLS)}")
        await ws.prepare(request)
        ns, pod, container = request.match_info["ns"], request.match_info["pod"], request.match_info["container"]
        _, cs = _find(records, ns, pod, container, False)
        if cs is None or cs.state != ContainerState.RUNNING:
            await ws.send_bytes(ch.frame(ch.ERROR, ch.failure_status(
                f'container "{container}" in pod "{pod}" is not running on node {k.node_name}')))
            await ws.close()
            return None, "", ws
        return ws, ready.protocol, cs

    def flag(request: web.Request, name: str, default: bool = False) -> bool:
        value = request.query.get(name)
        return default if value is None else value.lower() in ("1", "true")

    async def exec_(request: web.Request) -> web.StreamResponse:
        ws, protocol, cs = await open_stream(request)
        if ws is None:
            return cs  # type: ignore[return-value]
        cmd = request.query.getall("command", [])
        tty = flag(request, "tty")
        try:
            url = await k.call_runtime(k.runtime.exec, cs.id, cmd, tty, flag(request, "stdin"),  # type: ignore[attr-defined]
                                       flag(request, "stdout", True), flag(request, "stderr", not tty))
            upstream = await relay.connect(session(), url, protocol)
        except Exception as exc:  # noqa: BLE001 - the runtime's reason, on the error channel as the kubelet does
            await ws.send_bytes(ch.frame(ch.ERROR, ch.failure_status(f"exec failed: {exc}")))
            await ws.close()
            return ws
        await relay.relay(ws, upstream)
        return ws

    async def port_forward(request: web.Request) -> web.StreamResponse:
        """CRI ``PortForward`` for the pod's sandbox, then relay (SPDY inside the WebSocket, untouched)."""
        ws = web.WebSocketResponse(protocols=ch.PORTFORWARD_PROTOCOLS, max_msg_size=relay.MAX_MESSAGE,
                                   autoping=True)
        ready = ws.can_prepare(request)
        if not ready.ok or ready.protocol not in ch.PORTFORWARD_PROTOCOLS:
            return web.Response(status=400, text=f"expected a WebSocket with one of {', '.join(ch.PORTFORWARD_PROTOCOLS)}")
        ns, pod = request.match_info["ns"], request.match_info["pod"]
        rec = next((r for r in records.values() if r.pod["metadata"]["name"] == pod
                    and r.pod["metadata"].get("namespace", "default") == ns), None)
        if rec is None or rec.sandbox is None:
            return web.Response(status=404, text=f"pod {ns}/{pod} has no sandbox on node {k.node_name}")
        try:
            url = await k.call_runtime(k.runtime.port_forward, rec.sandbox.id)  # type: ignore[attr-defined]
            if request.query_string:
                url += "?" + request.query_string
            upstream = await relay.connect(session(), url, ready.protocol)
        except Exception as exc:  # noqa: BLE001 - said before the upgrade, so the apiserver can report it
            return web.Response(status=500, text=f"port-forward failed: {exc}")
        await ws.prepare(request)
        await relay.relay(ws, upstream)
        return ws

    async def attach(request: web.Request) -> web.StreamResponse:
        """The container's output from now on, until it exits (labkit keeps no stdin open for containers)."""
        ws, _protocol, cs = await open_stream(request)
        if ws is None:
            return cs  # type: ignore[return-value]

        async def follow() -> None:
            sent = len(await k.call_runtime(k.runtime.logs, cs.id))  # type: ignore[attr-defined]
            while True:
                st = await k.call_runtime(k.runtime.container_status, cs.id)  # type: ignore[attr-defined]
                data = await k.call_runtime(k.runtime.logs, cs.id)  # type: ignore[attr-defined]
                if len(data) > sent:
                    await ws.send_bytes(ch.frame(ch.STDOUT, data[sent:]))
                    sent = len(data)
                if st.state != ContainerState.RUNNING:
                    code = st.exit_code or 0
                    await ws.send_bytes(ch.frame(ch.ERROR, ch.exit_status(code, [])))
                    return
                await asyncio.sleep(0.2)

        async def client_gone() -> None:
            async for msg in ws:
                if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                    break

        tasks = [asyncio.ensure_future(follow()), asyncio.ensure_future(client_gone())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except LabkitError:
            pass
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await ws.close()
        return ws

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def pods(request: web.Request) -> web.Response:
        items = [r.pod for r in records.values()]
        return web.Response(text=json.dumps({"kind": "PodList", "apiVersion": "v1", "items": items}),
                            content_type="application/json")

    async def containers(request: web.Request) -> web.Response:
        rows = []
        for rec in records.values():
            for name, cs in rec.current.items():
                rows.append({"pod": rec.key, "container": name, "id": cs.id, "state": str(cs.state),
                             "pid": cs.pid, "restarts": C.restart_count(cs)})
        return web.json_response(rows)

    app.router.add_get("/containerLogs/{ns}/{pod}/{container}", logs)
    app.router.add_get("/exec/{ns}/{pod}/{container}", exec_)
    app.router.add_route("POST", "/exec/{ns}/{pod}/{container}", exec_)
    app.router.add_get("/attach/{ns}/{pod}/{container}", attach)
    app.router.add_get("/portForward/{ns}/{pod}", port_forward)
    app.router.add_route("POST", "/attach/{ns}/{pod}/{container}", attach)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/pods", pods)
    app.router.add_get("/containers", containers)
    if stats is not None:
        async def summary(request: web.Request) -> web.Response:
            return web.json_response(stats.summary())

        async def metrics(request: web.Request) -> web.Response:
            registry = stats.resource_registry if request.path.endswith("/resource") else stats.registry
            return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

        app.router.add_get("/stats/summary", summary)
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/metrics/resource", metrics)

    async def close_sessions(_app: web.Application) -> None:
        for s in sessions:
            await s.close()

    app.on_cleanup.append(close_sessions)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, k.address, port)
    await site.start()
    real_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, real_port
