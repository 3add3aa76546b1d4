"""The watch cache: one store watch for the whole server, fanned out to every HTTP watcher.

kube-apiserver does not open an etcd watch per client: it keeps a window of recent events in
memory and serves all watchers from it. Here too: the hub subscribes once to ``/registry/``,
keeps the last events in a ring, and hands each event to every matching subscriber as bytes that
are encoded once. A watcher that asks for a resourceVersion older than the ring gets its own
store watch; older than the store's compaction floor, it gets 410 Expired.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import Callable

from labkit.controlplane.store import Compacted, Event, Store
from labkit.controlplane.store.fanout import NonBlocking

from . import errors
from .codec import with_rv
from .errors import StatusError
from .resources import BY_PLURAL, ResourceType
from .selectable import AttrCache, Attrs, compute, matches
from .selectors import FieldSelector, LabelSelector

log = logging.getLogger(__name__)
MAX_BACKLOG = 10_000  # live events queued for one watcher before it is closed as unresponsive
MAX_REPLAY = 200_000  # events a watch replaying old history (its own store watch) may queue


class HubEvent:
    """One store change, with its reply bytes encoded at most once."""

    __slots__ = ("revision", "type", "key", "resource", "value", "prev_value", "_obj_bytes", "attrs",
                 "prev_attrs", "prev_known")

    def __init__(self, ev: Event):
        kv = ev.kv
        self.revision = kv.mod_revision
        self.key = kv.key
        parts = kv.key.split("/", 3)
        self.resource = parts[2] if len(parts) > 2 else ""
        if ev.type == "DELETE":
            self.type = "DELETED"
        else:
            self.type = "ADDED" if kv.create_revision == kv.mod_revision else "MODIFIED"
        self.value = kv.value
        self.prev_value = ev.prev_kv.value if ev.prev_kv is not None else None
        self._obj_bytes: bytes | None = None
        self.attrs: Attrs | None = None  # computed once, shared by every subscriber
        self.prev_attrs: Attrs | None = None
        self.prev_known = False

    def object_bytes(self) -> bytes:
        if self._obj_bytes is None:
            self._obj_bytes = with_rv(self.value, self.revision)
        return self._obj_bytes


class Subscriber:
    """One HTTP watch: its filter, and the events waiting to be written to it."""

    def __init__(self, hub: WatchHub, rt: ResourceType, ns: str | None, lsel: LabelSelector,
                 fsel: FieldSelector, from_rev: int):
        self.hub = hub
        self.rt = rt
        self.prefix = rt.key_prefix(ns)
        self.lsel, self.fsel = lsel, fsel
        self.filtered = not (lsel.empty and fsel.empty)
        self.from_rev = from_rev
        self.pending: collections.deque[tuple[str, HubEvent]] = collections.deque()
        self.wake = asyncio.Event()
        self.error: StatusError | None = None
        self.ended = False
        self.store_watch = None
        self.last_rev = from_rev
        self.cap = hub.backlog  # raised by the events a watch replays when it starts
        self.overflowed = False
        self.on_overflow: Callable[[], None] | None = None  # set by the stream: cut a stuck writer off
        # pods watched by node name (every kubelet) are found through an index, not a scan
        self.trigger = fsel.equals("spec.nodeName") if rt.plural == "pods" else None

    def offer(self, ev: HubEvent) -> bool:
        """Queue the event if this watcher wants it (turning it into ADDED/DELETED when it starts or stops matching)."""
        if (ev.revision <= self.from_rev or not ev.key.startswith(self.prefix) or self.error is not None
                or self.overflowed):
            return False
        if len(self.pending) >= self.cap:
            self.overflow()
            return True
        self.last_rev = ev.revision
        if not self.filtered:
            self.pending.append((ev.type, ev))
            return True
        if ev.type == "MODIFIED":
            prev = self.hub.prev_attrs_of(ev)
            now = matches(self.hub.attrs_of(ev), self.lsel, self.fsel)
            before = prev is not None and matches(prev, self.lsel, self.fsel)
            if now and not before:
                self.pending.append(("ADDED", ev))
            elif before and not now:
                self.pending.append(("DELETED", ev))
            elif now:
                self.pending.append(("MODIFIED", ev))
            else:
                return False
            return True
        if matches(self.hub.attrs_of(ev), self.lsel, self.fsel):
            self.pending.append((ev.type, ev))
            return True
        return False

    def overflow(self) -> None:
        """The client reads too slowly: close its watch, as kube-apiserver closes an unresponsive
        watcher. What it has not received stays in the watch cache, so it resumes from the last
        resourceVersion it saw (or, if that has left the window, gets 410 and lists again)."""
        log.info("closing a %s watch that fell %d events behind", self.rt.plural, len(self.pending))
        self.pending.clear()
        self.overflowed = True
        self.end()
        if self.on_overflow is not None:
            self.on_overflow()

    def fail(self, err: StatusError) -> None:
        self.error = err
        self.wake.set()

    def end(self) -> None:
        """Close the stream without an error (server shutdown): clients reconnect and resume."""
        self.ended = True
        self.wake.set()

    def close(self) -> None:
        self.hub.unsubscribe(self)
        if self.store_watch is not None:
            self.store_watch.cancel()
            self.store_watch = None


class WatchHub:
    """Runs on the server's event loop; fed by one store watch on a store-owned thread."""

    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop, attrs: AttrCache, window: int = 100_000,
                 backlog: int = MAX_BACKLOG):
        self.store = store
        self.backlog = backlog
        self.loop = loop
        self.attrs = attrs
        self.window = window
        self.ring: collections.deque[HubEvent] = collections.deque()
        self.latest: dict[str, tuple[int, bytes]] = {}  # key -> (revision, value) last seen
        self.subs: dict[str, set[Subscriber]] = collections.defaultdict(set)
        self.by_node: dict[str, set[Subscriber]] = collections.defaultdict(set)  # pod watchers by spec.nodeName
        self._loop_thread = threading.get_ident()  # the hub is made on the loop's own thread
        self.revision = store.revision
        self.complete_from = self.revision  # every event after this revision is in the ring
        self._watch = store.watch("/registry/", self.revision + 1, NonBlocking(self._from_store),
                                  self._store_failed)
        self.listeners: list[Callable[[list[HubEvent]], None]] = []

    async def caught_up(self, revision: int, timeout: float = 1.0) -> bool:
        """Wait until every store event up to ``revision`` is dispatched, so reads from the cache
        and its indexes are as fresh as a read from the store (kube-apiserver's consistent reads
        from the watch cache). False after ``timeout``: the caller then reads the store itself."""
        deadline = self.loop.time() + timeout
        while self.revision < revision:
            if self.loop.time() > deadline:
                return False
            await asyncio.sleep(0.002)
        return True

    # ---- feeding ---------------------------------------------------------------------
    def _from_store(self, events: list[Event]) -> None:
        # runs on the store's writer thread (NonBlocking): hand over to the loop, nothing more. A
        # write made on the loop itself needs no wake-up through the loop's self-pipe.
        try:
            if threading.get_ident() == self._loop_thread:
                self.loop.call_soon(self._dispatch, events)
            else:
                self.loop.call_soon_threadsafe(self._dispatch, events)
        except RuntimeError:  # loop closed during shutdown
            pass

    def _store_failed(self, exc: Exception) -> None:
        log.warning("the store ended the apiserver's watch: %s", exc)

        def fail_all() -> None:
            for subs in [*self.subs.values(), *self.by_node.values()]:
                for s in list(subs):
                    s.fail(errors.expired(f"the watch cache lost its store watch: {exc}"))
            self.ring.clear()
            self.complete_from = self.store.revision
            self.revision = self.complete_from
            self._watch = self.store.watch("/registry/", self.revision + 1, NonBlocking(self._from_store),
                                           self._store_failed)
        try:
            self.loop.call_soon_threadsafe(fail_all)
        except RuntimeError:
            pass

    def _dispatch(self, events: list[Event]) -> None:
        touched: set[Subscriber] = set()
        hevs = []
        for e in events:
            if e.kv.mod_revision <= self.revision:
                continue
            ev = HubEvent(e)
            hevs.append(ev)
            self.revision = ev.revision
            self.ring.append(ev)
            if len(self.ring) > self.window:
                self.complete_from = self.ring.popleft().revision
            for sub in self.subs.get(ev.resource, ()):
                if sub.offer(ev):
                    touched.add(sub)
            if self.by_node and ev.resource == "pods":
                node = self.attrs_of(ev)[1].get("spec.nodeName", "")
                candidates = set(self.by_node.get(node, ()))
                if ev.type == "MODIFIED":
                    prev = self.prev_attrs_of(ev)
                    if prev is not None and prev[1].get("spec.nodeName", "") != node:
                        candidates |= self.by_node.get(prev[1].get("spec.nodeName", ""), set())
                for sub in candidates:
                    if sub.offer(ev):
                        touched.add(sub)
            if ev.type == "DELETED":
                self.latest.pop(ev.key, None)
                self.attrs.forget(ev.key)
            else:
                self.latest[ev.key] = (ev.revision, ev.value)
        for sub in touched:
            sub.wake.set()
        for fn in self.listeners:
            fn(hevs)

    def attrs_of(self, ev: HubEvent) -> Attrs:
        """The event's selectable attributes, computed once and shared by every watcher."""
        if ev.attrs is None:
            rt = BY_PLURAL.get(ev.resource)
            ev.attrs = self.attrs.get(rt, ev.key, ev.revision, ev.value) if rt else ({}, {})
        return ev.attrs

    def prev_attrs_of(self, ev: HubEvent) -> Attrs | None:
        """The selectable attributes of the object before this change (None if it is unknown)."""
        if ev.prev_known:
            return ev.prev_attrs
        ev.prev_known = True
        rt = BY_PLURAL.get(ev.resource)
        if rt is None:
            return None
        prev = ev.prev_value
        if prev is None:
            last = self.latest.get(ev.key)
            prev = last[1] if last is not None and last[0] < ev.revision else None
        if prev is None:
            try:
                kv = self.store.get(ev.key, ev.revision - 1)
            except Exception:
                kv = None
            prev = kv.value if kv is not None else None
        if prev is not None:
            ev.prev_attrs = compute(rt, prev)
        return ev.prev_attrs

    # ---- subscribing -------------------------------------------------------------------
    def subscribe(self, rt: ResourceType, ns: str | None, lsel: LabelSelector, fsel: FieldSelector,
                  from_rev: int) -> Subscriber:
        """Start delivering events after ``from_rev``; raises StatusError 410 if it is too old."""
        floor = self.store.compact_revision
        if from_rev + 1 < floor:
            raise errors.expired(f"too old resource version: {from_rev} ({floor})")
        sub = Subscriber(self, rt, ns, lsel, fsel, from_rev)
        if from_rev >= self.complete_from:
            newer = []
            for ev in reversed(self.ring):
                if ev.revision <= from_rev:
                    break
                newer.append(ev)
            sub.cap = len(newer) + self.backlog  # the replay itself never counts as falling behind
            for ev in reversed(newer):
                sub.offer(ev)
            if sub.trigger is not None:
                self.by_node[sub.trigger].add(sub)
            else:
                self.subs[rt.segment].add(sub)
            if sub.pending:
                sub.wake.set()
            return sub
        # older than the window: a private store watch replays history for this client alone
        sub.cap = MAX_REPLAY
        def feed(events: list[Event]) -> None:
            def push() -> None:
                for e in events:
                    sub.offer(HubEvent(e))
                sub.wake.set()
            self.loop.call_soon_threadsafe(push)

        def failed(exc: Exception) -> None:
            self.loop.call_soon_threadsafe(sub.fail, errors.expired(f"too old resource version: {from_rev}"))
        try:
            sub.store_watch = self.store.watch(sub.prefix, from_rev + 1, NonBlocking(feed), failed)
        except Compacted:
            raise errors.expired(f"too old resource version: {from_rev} ({floor})") from None
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        """Stop delivering to this watcher."""
        if sub.trigger is not None:
            bucket = self.by_node.get(sub.trigger)
            if bucket is not None:
                bucket.discard(sub)
                if not bucket:
                    del self.by_node[sub.trigger]
        else:
            self.subs.get(sub.rt.segment, set()).discard(sub)

    def forget_below(self, revision: int) -> None:
        """After compaction: drop ring entries the store no longer has (so old watches get 410)."""
        while self.ring and self.ring[0].revision < revision:
            self.complete_from = self.ring.popleft().revision
        self.complete_from = max(self.complete_from, revision - 1)

    def close(self) -> None:
        try:
            self._watch.cancel()
        except Exception:
            pass
        for subs in [*self.subs.values(), *self.by_node.values()]:
            for s in list(subs):
                s.end()
