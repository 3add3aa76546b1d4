"""List + watch into a local cache, calling handlers on changes: client-go's informer, small.

Controllers read from the cache instead of asking the apiserver each time, and react to
changes from handlers. When the watch breaks it resumes from the last resourceVersion; when
the server says that version is gone (410) it lists again and reports the differences.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from labkit.client.resources import Resource, resource
from labkit.client.rest import ApiError, Client

log = logging.getLogger(__name__)

Handler = Callable[..., None]


def key_of(obj: dict) -> str:
    """``namespace/name`` for namespaced objects, ``name`` otherwise (client-go's MetaNamespaceKey)."""
    md = obj.get("metadata", {})
    ns = md.get("namespace")
    return f"{ns}/{md.get('name')}" if ns else md.get("name", "")


@dataclass
class _Handlers:
    on_add: Handler | None = None
    on_update: Handler | None = None
    on_delete: Handler | None = None


class Informer:
    def __init__(
        self, client: Client, res: Resource | str, namespace: str | None = None, *,
        label_selector: str | None = None, field_selector: str | None = None,
    ):
        self.client = client
        self.res = res if isinstance(res, Resource) else resource(res)
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.cache: dict[str, dict] = {}
        self.synced = asyncio.Event()
        self._handlers: list[_Handlers] = []
        self._rv: str | None = None

    def add_handler(self, on_add: Handler | None = None, on_update: Handler | None = None,
                    on_delete: Handler | None = None) -> None:
        """``on_add(obj)``, ``on_update(old, new)``, ``on_delete(obj)``; called on the event loop, keep them quick."""
        self._handlers.append(_Handlers(on_add, on_update, on_delete))

    def get(self, name: str, namespace: str | None = None) -> dict | None:
        return self.cache.get(f"{namespace}/{name}" if namespace else name)

    def list(self) -> list[dict]:
        return list(self.cache.values())

    async def wait_synced(self, timeout: float = 30.0) -> None:
        await asyncio.wait_for(self.synced.wait(), timeout)

    def _fire(self, kind: str, *args: dict) -> None:
        for h in self._handlers:
            fn = getattr(h, kind)
            if fn is None:
                continue
            try:
                fn(*args)
            except Exception:  # a handler bug must not stop the informer
                log.exception("%s handler for %s failed", kind, self.res.plural)

    async def _relist(self) -> None:
        lst = await self.client.list(self.res, self.namespace, label_selector=self.label_selector,
                                     field_selector=self.field_selector)
        fresh = {key_of(o): o for o in lst.get("items") or []}
        for o in fresh.values():
            o.setdefault("kind", self.res.kind)
            o.setdefault("apiVersion", self.res.api_version)
        old = self.cache
        self.cache = fresh
        for k, o in fresh.items():
            if k in old:
                if old[k].get("metadata", {}).get("resourceVersion") != o["metadata"].get("resourceVersion"):
                    self._fire("on_update", old[k], o)
            else:
                self._fire("on_add", o)
        for k, o in old.items():
            if k not in fresh:
                self._fire("on_delete", o)
        self._rv = (lst.get("metadata") or {}).get("resourceVersion")
        self.synced.set()

    def _apply(self, typ: str, obj: dict) -> None:
        k = key_of(obj)
        rv = obj.get("metadata", {}).get("resourceVersion")
        if rv:
            self._rv = rv
        if typ == "ADDED" or typ == "MODIFIED":
            old = self.cache.get(k)
            self.cache[k] = obj
            if old is None:
                self._fire("on_add", obj)
            else:
                self._fire("on_update", old, obj)
        elif typ == "DELETED":
            old = self.cache.pop(k, None)
            self._fire("on_delete", old or obj)

    async def run(self) -> None:
        """Run forever (cancel the task to stop)."""
        need_list = True
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                async for typ, obj in self.client.watch(
                    self.res, self.namespace, resource_version=self._rv, label_selector=self.label_selector,
                    field_selector=self.field_selector, timeout_seconds=300,
                ):
                    if typ == "ERROR":
                        need_list = True
                        break
                    if typ == "BOOKMARK":
                        self._rv = obj.get("metadata", {}).get("resourceVersion") or self._rv
                        continue
                    self._apply(typ, obj)
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                if exc.gone:
                    need_list = True
                    continue
                log.info("%s watch: %s; retrying", self.res.plural, exc)
                need_list = True
                await asyncio.sleep(0.5)
            except Exception:
                log.exception("%s informer failed; relisting", self.res.plural)
                need_list = True
                await asyncio.sleep(0.5)
