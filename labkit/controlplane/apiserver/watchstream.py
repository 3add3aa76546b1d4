"""Watch streams over HTTP (``?watch=1``): one JSON event per line, bookmarks, and 410 in the stream.

The events come from the watch cache (:mod:`.watch`); this module only writes them to the
client: initial ADDED events (when listing first, or with ``sendInitialEvents``), then every
change, a BOOKMARK whenever the stream has been quiet for ``bookmark_interval``, and an ERROR
line when the watch cannot go on (its revision was compacted).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

from . import tables
from .codec import decode, dumps, with_rv
from .errors import StatusError
from .lists import Lists
from .request import JSON, TABLE_CT, Request
from .resources import ResourceType
from .selectable import AttrCache, matches
from .storecalls import StoreCalls
from .watch import Subscriber, WatchHub


class WatchStreams:
    """Serves ``GET ...?watch=1`` for every resource."""

    def __init__(self, calls: StoreCalls, attrs: AttrCache, hub: WatchHub, lists: Lists,
                 bookmark_interval: float):
        self.calls = calls
        self.registry = calls.registry
        self.attrs = attrs
        self.hub = hub
        self.lists = lists
        self.bookmark_interval = bookmark_interval

    async def watch(self, req: Request) -> web.StreamResponse:
        lsel, fsel = req.selectors()
        timeout = req.int_param("timeoutSeconds")
        bookmarks = req.query.get("allowWatchBookmarks") in ("true", "1")
        send_initial = req.query.get("sendInitialEvents") in ("true", "1")
        as_table = req.wants_table()
        include = req.query.get("includeObject", "Metadata")
        initial: list = []
        asked_rv = req.resource_version()  # a 400 for what is not a uint64
        if asked_rv is None or send_initial:
            indexed = await self.lists.indexed(req, fsel)
            if indexed is not None:
                kvs, from_rev = indexed
            else:
                kvs, from_rev = await self.calls.call(self.registry.list_page, req.rt, req.ns, None, None, None)
            initial = [kv for kv in kvs if matches(self.attrs.get(req.rt, kv.key, kv.mod_revision, kv.value),
                                                   lsel, fsel)]
        else:
            from_rev = asked_rv
        resp = web.StreamResponse(status=200)
        resp.headers["Content-Type"] = TABLE_CT if as_table else JSON
        resp.enable_chunked_encoding()
        await resp.prepare(req.http)
        first = [True]

        def line(kind: str, value: bytes | None = None, rev: int = 0, obj_bytes: bytes | None = None) -> bytes:
            if as_table:
                obj = decode(value, rev) if value is not None else json.loads(obj_bytes or b"{}")
                t = tables.table(tables.printer_key(req.rt), [obj], {"resourceVersion": str(rev)}, include, headers=True)
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
        writing = [False]

        def cut_off() -> None:  # the client stopped reading: a write stuck on it is abandoned
            transport = req.http.transport
            if writing[0] and transport is not None:
                transport.abort()
        sub.on_overflow = cut_off
        try:
            if initial:
                await resp.write(b"".join(line("ADDED", kv.value, kv.mod_revision) for kv in initial))
            if send_initial:
                await resp.write(bookmark(req.rt, from_rev, initial_end=True))
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
                    writing[0] = True
                    await resp.write(b"".join(batch))
                    writing[0] = False
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
                        await resp.write(bookmark(req.rt, rev))
            await resp.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            sub.close()
        return resp


def bookmark(rt: ResourceType, rev: int, initial_end: bool = False) -> bytes:
    """A BOOKMARK line: "everything up to ``rev`` was sent", so a client resumes from there."""
    meta: dict[str, Any] = {"resourceVersion": str(rev)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return b'{"type":"BOOKMARK","object":%s}\n' % dumps({"kind": rt.kind, "apiVersion": rt.group_version,
                                                         "metadata": meta})
