"""List: pages (``limit``/``continue``), ``resourceVersionMatch=Exact``, selectors and the indexes.

A continue token is the revision the first page was read at and the last key sent, so every page
of one list reads the same snapshot. A field selector on ``metadata.name`` is a point lookup and
one on a pod's ``spec.nodeName`` (every kubelet's) uses the pods-by-node index; the rest scans.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aiohttp import web

from . import errors, tables
from .codec import decode, dumps, with_rv
from .indexes import PodsByNode
from .request import TABLE_CT, Request, response
from .resources import ResourceType
from .selectable import AttrCache, matches
from .selectors import FieldSelector
from .storecalls import StoreCalls
from .watch import WatchHub


class Lists:
    """Lists of one resource, and the indexed reads that lists and watches start from."""

    def __init__(self, calls: StoreCalls, attrs: AttrCache, hub: WatchHub, pods_by_node: PodsByNode):
        self.calls = calls
        self.registry = calls.registry
        self.store = calls.store
        self.attrs = attrs
        self.hub = hub
        self.pods_by_node = pods_by_node

    async def list(self, req: Request) -> web.Response:
        lsel, fsel = req.selectors()
        limit = req.int_param("limit")
        if limit is not None and limit <= 0:  # as kube-apiserver: only a positive limit pages
            limit = None
        token = req.query.get("continue")
        start_after, rev = None, None
        asked_rv = req.resource_version()  # validated (a 400 for "notanumber"); any revision serves
        if token and asked_rv is not None:
            raise errors.bad_request("specifying resource version is not allowed when using continue")
        if token:
            try:
                state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
                rev, start_after = int(state["rv"]), state["start"]
                if not isinstance(start_after, str) or not isinstance(state["rv"], int) or rev < 0:
                    raise ValueError("malformed")
            except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError):
                raise errors.bad_request("invalid continue token") from None
        if not token and req.query.get("resourceVersionMatch") == "Exact":
            if asked_rv is None:
                raise errors.bad_request("resourceVersionMatch=Exact needs a resourceVersion greater than 0")
            rev = asked_rv
            if rev > self.store.revision:
                raise errors.StatusError(504, "Timeout", f"Too large resource version: {rev}, current: "
                                         f"{self.store.revision}")
            if rev < self.store.compact_revision:
                raise errors.expired(f"too old resource version: {rev} ({self.store.compact_revision})")
        filtered = not (lsel.empty and fsel.empty)
        prefix = req.rt.key_prefix(req.ns)
        if start_after is not None and not start_after.startswith(prefix):
            raise errors.bad_request("the continue token does not belong to this list")
        items: list = []
        more_key = None
        indexed = None if token or rev is not None else await self.indexed(req, fsel)
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
                kvs, rev = await self.calls.call(self.registry.list_page, req.rt, req.ns, rev, page, start_after)
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
            return response(dumps(tables.table(tables.printer_key(req.rt), objs, meta, req.query.get("includeObject",
                                                                                        "Metadata"))),
                            content_type=TABLE_CT)
        head = dumps({"kind": req.rt.list_kind, "apiVersion": req.rt.group_version, "metadata": meta})
        body = b"".join((head[:-1], b',"items":[', b",".join(with_rv(kv.value, kv.mod_revision) for kv in items),
                         b"]}"))
        return response(body)

    async def indexed(self, req: Request, fsel: FieldSelector):
        """(kvs, revision) from a point lookup or the pods-by-node index, or None to scan."""
        name = fsel.name_equals()
        if name is not None and (req.ns is not None or not req.rt.namespaced):
            return await self.calls.call(self._point_list, req.rt, req.ns, name)
        node = fsel.equals("spec.nodeName") if req.rt.plural == "pods" else None
        if node is None or self.pods_by_node is None or not await self.pods_by_node.ensure():
            return None
        # the index follows the store through the watch hub: let it catch up with writes that were
        # acknowledged before this request, or a just-deleted pod could still be listed
        if not await self.hub.caught_up(await self.calls.call(lambda: self.store.revision)):
            return None
        keys, rev = self.pods_by_node.lookup(node, req.ns)
        return await self.calls.call(self._get_many, keys, rev)

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
