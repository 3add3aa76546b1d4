"""The kubelet's own HTTP port: container logs for ``kubectl logs`` (via the apiserver), health, pods.

The apiserver finds it from the Node's ``status.daemonEndpoints.kubeletEndpoint.Port`` and
``InternalIP`` address and forwards ``pods/log`` requests to ``/containerLogs/<ns>/<pod>/<container>``.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from aiohttp import web

from labkit.errors import LabkitError
from labkit.node.kubelet import containers as C
from labkit.runtime.base import ContainerState

if TYPE_CHECKING:
    from collections.abc import Mapping

    from labkit.node.kubelet.nodecontext import NodeContext
    from labkit.node.kubelet.podworker import PodRecord


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


async def start_server(k: NodeContext, records: Mapping[str, PodRecord], port: int = 0) -> tuple[web.AppRunner, int]:
    """Serve the node's pods (``records``, by pod uid, as the kubelet keeps them) on ``port``."""
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
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/pods", pods)
    app.router.add_get("/containers", containers)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, k.address, port)
    await site.start()
    real_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, real_port
