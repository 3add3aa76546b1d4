"""Plain Kubernetes REST over aiohttp: the verbs every component needs, and watch streams.

Asynchronous because the components hold many watches and many requests in flight at once
(a scheduler binding hundreds of pods a second, a process of hollow kubelets); one shared
connection pool keeps that cheap.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from labkit.client.kubeconfig import KubeConfig
from labkit.client.resources import Resource, resource

PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}


class ApiError(Exception):
    """An API request failed; ``code`` and ``reason`` come from the server's metav1.Status."""

    def __init__(self, code: int, reason: str, message: str, body: Any = None):
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.body = body

    @property
    def not_found(self) -> bool:
        return self.code == 404

    @property
    def conflict(self) -> bool:
        return self.code == 409

    @property
    def gone(self) -> bool:
        return self.code == 410


def _res(r: Resource | str) -> Resource:
    return r if isinstance(r, Resource) else resource(r)


class Client:
    """An asyncio Kubernetes client. Create it inside a running event loop; ``await close()`` at the end."""

    def __init__(self, config: KubeConfig | str | None = None, *, user_agent: str = "labkit", pool: int = 64):
        self.config = config if isinstance(config, KubeConfig) else KubeConfig.load(config)
        headers = {"User-Agent": user_agent, "Accept": "application/json"}
        if self.config.token:
            headers["Authorization"] = f"Bearer {self.config.token}"
        self._session = aiohttp.ClientSession(
            base_url=None,
            headers=headers,
            connector=aiohttp.TCPConnector(limit=pool, ssl=self.config.ssl_context() or False),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            json_serialize=json.dumps,
        )
        self.user_agent = user_agent

    async def close(self) -> None:
        await self._session.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ plumbing
    async def request(
        self, method: str, path: str, *, params: dict | None = None, body: Any = None,
        content_type: str = "application/json", timeout: float = 30.0,
    ) -> Any:
        """One request; returns the decoded JSON (or text), raises :class:`ApiError` on HTTP errors."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if data is not None else {}
        q = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in (params or {}).items() if v is not None}
        try:
            async with self._session.request(
                method, self.config.server + path, params=q, data=data, headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as resp:
                raw = await resp.read()
                return _decode(resp.status, resp.content_type, raw)
        except (TimeoutError, aiohttp.ClientConnectionError) as exc:
            raise ApiError(503, "ServiceUnavailable", f"cannot reach {self.config.server}: {exc or type(exc).__name__}") from exc

    # ------------------------------------------------------------------ verbs
    async def get(self, res: Resource | str, name: str, namespace: str | None = None, sub: str | None = None) -> dict:
        return await self.request("GET", _res(res).path(namespace, name, sub))

    async def list(
        self, res: Resource | str, namespace: str | None = None, *, label_selector: str | None = None,
        field_selector: str | None = None, resource_version: str | None = None,
    ) -> dict:
        """The whole list object (``items`` and ``metadata.resourceVersion`` to watch from)."""
        return await self.request("GET", _res(res).path(namespace), params={
            "labelSelector": label_selector, "fieldSelector": field_selector, "resourceVersion": resource_version,
        })

    async def create(self, res: Resource | str, obj: dict, namespace: str | None = None) -> dict:
        r = _res(res)
        ns = namespace or (obj.get("metadata", {}).get("namespace") if r.namespaced else None)
        if r.namespaced and not ns:
            ns = "default"
        obj.setdefault("apiVersion", r.api_version)
        obj.setdefault("kind", r.kind)
        return await self.request("POST", r.path(ns), body=obj)

    async def update(self, res: Resource | str, obj: dict, sub: str | None = None) -> dict:
        """PUT the object; its resourceVersion makes this compare-and-swap (409 when stale)."""
        r = _res(res)
        md = obj["metadata"]
        obj.setdefault("apiVersion", r.api_version)
        obj.setdefault("kind", r.kind)
        return await self.request("PUT", r.path(md.get("namespace"), md["name"], sub), body=obj)

    async def update_status(self, res: Resource | str, obj: dict) -> dict:
        return await self.update(res, obj, sub="status")

    async def patch(
        self, res: Resource | str, name: str, patch: Any, namespace: str | None = None, *,
        patch_type: str = "merge", sub: str | None = None,
    ) -> dict:
        return await self.request(
            "PATCH", _res(res).path(namespace, name, sub), body=patch, content_type=PATCH_TYPES[patch_type]
        )

    async def delete(
        self, res: Resource | str, name: str, namespace: str | None = None, *,
        propagation: str | None = None, grace_period: int | None = None, preconditions_uid: str | None = None,
    ) -> Any:
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation:
            body["propagationPolicy"] = propagation
        if grace_period is not None:
            body["gracePeriodSeconds"] = grace_period
        if preconditions_uid:
            body["preconditions"] = {"uid": preconditions_uid}
        return await self.request("DELETE", _res(res).path(namespace, name), body=body)

    async def bind(self, pod: dict, node_name: str) -> Any:
        """POST pods/binding: how a scheduler assigns a pod to a node."""
        md = pod["metadata"]
        body = {
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": md["name"], "namespace": md.get("namespace", "default"), "uid": md.get("uid")},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node_name},
        }
        return await self.request("POST", resource("pods").path(md.get("namespace", "default"), md["name"], "binding"),
                                  body=body)

    async def watch(
        self, res: Resource | str, namespace: str | None = None, *, resource_version: str | None = None,
        label_selector: str | None = None, field_selector: str | None = None, timeout_seconds: int | None = None,
        bookmarks: bool = True,
    ) -> AsyncIterator[tuple[str, dict]]:
        """Yield ``(type, object)`` events until the server ends the stream.

        An in-stream 410 arrives as an ``ERROR`` event whose object is a Status; the caller relists.
        """
        params = {
            "watch": "true", "resourceVersion": resource_version, "labelSelector": label_selector,
            "fieldSelector": field_selector, "timeoutSeconds": timeout_seconds,
            "allowWatchBookmarks": "true" if bookmarks else None,
        }
        q = {k: str(v) for k, v in params.items() if v is not None}
        try:
            async with self._session.get(
                self.config.server + _res(res).path(namespace), params=q,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None),
            ) as resp:
                if resp.status >= 400:
                    _decode(resp.status, resp.content_type, await resp.read())
                buf = b""
                async for chunk in resp.content.iter_any():
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        if line.strip():
                            ev = json.loads(line)
                            yield ev.get("type", ""), ev.get("object") or {}
                if buf.strip():
                    ev = json.loads(buf)
                    yield ev.get("type", ""), ev.get("object") or {}
        except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise ApiError(503, "ServiceUnavailable", f"watch stream broke: {exc or type(exc).__name__}") from exc


def _decode(status: int, content_type: str, raw: bytes) -> Any:
    if content_type == "application/json" or raw[:1] in (b"{", b"["):
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
    else:
        body = raw.decode(errors="replace")
    if status >= 400:
        if isinstance(body, dict) and body.get("kind") == "Status":
            raise ApiError(status, body.get("reason", ""), body.get("message", ""), body)
        raise ApiError(status, "Unknown", str(body)[:300], body)
    return body
