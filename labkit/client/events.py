"""Record core/v1 Events: the trail ``kubectl describe`` shows under a pod or node.

Every component says what it did (Scheduled, Pulled, Started, SuccessfulCreate, ...) through
Events, so a reader can follow a pod across components with nothing but the API.

Identical events are aggregated as client-go's EventCorrelator does: the same involved object,
reason, message, type and source within :data:`AGGREGATE_WINDOW` seconds update one Event's
``count`` and ``lastTimestamp`` (a merge patch) instead of adding a row each time, so eight
FailedMount retries read "(x8 over 15s)" in ``kubectl describe`` and ``kubectl events``.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import os
import time
from dataclasses import dataclass

from labkit.client.rest import ApiError, Client

log = logging.getLogger(__name__)

AGGREGATE_WINDOW = 600.0  # seconds an identical event keeps counting into the same Event (client-go: 10 min)
MAX_REMEMBERED = 4096  # events remembered for aggregation (client-go's LRU holds 4096 too)


@dataclass
class _Seen:
    """One Event already written, and how often it has been seen."""
    name: str
    namespace: str
    count: int
    first: str
    last_monotonic: float


def now_iso() -> str:
    """RFC 3339 with seconds, the timestamp format of metav1.Time."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    """RFC 3339 with microseconds (metav1.MicroTime: Lease renewals, Event eventTime)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def object_ref(obj: dict) -> dict:
    md = obj.get("metadata", {})
    ref = {"kind": obj.get("kind", ""), "name": md.get("name", ""), "uid": md.get("uid", ""),
           "apiVersion": obj.get("apiVersion", "v1"), "resourceVersion": md.get("resourceVersion", "")}
    if md.get("namespace"):
        ref["namespace"] = md["namespace"]
    return ref


class EventRecorder:
    """Create Events asynchronously; failures are logged, never raised into the component."""

    def __init__(self, client: Client, component: str, host: str | None = None, max_in_flight: int = 0,
                 max_queued: int = 20000):
        self.client = client
        self.component = component
        self.host = host
        self._tasks: set[asyncio.Task] = set()
        self._seq = 0
        # like client-go's event broadcaster: events queue behind the component's real work
        self._sem = asyncio.Semaphore(max_in_flight) if max_in_flight else None
        self.max_queued = max_queued
        self.dropped = 0
        self._seen: collections.OrderedDict[tuple, _Seen] = collections.OrderedDict()
        self._locks: dict[tuple, asyncio.Lock] = {}

    def event(self, obj: dict, type_: str, reason: str, message: str) -> None:
        """Record an Event about ``obj`` (type_ is "Normal" or "Warning") without waiting for it."""
        if len(self._tasks) >= self.max_queued:
            self.dropped += 1  # overloaded: drop, as client-go's broadcaster does
            return
        task = asyncio.get_running_loop().create_task(self._queued(obj, type_, reason, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _queued(self, obj: dict, type_: str, reason: str, message: str) -> dict | None:
        if self._sem is None:
            return await self.emit(obj, type_, reason, message)
        async with self._sem:
            return await self.emit(obj, type_, reason, message)

    def _key(self, obj: dict, type_: str, reason: str, message: str) -> tuple:
        ref = object_ref(obj)
        return (self.component, self.host or "", ref["kind"], ref.get("namespace", ""), ref["name"], ref["uid"],
                ref["apiVersion"], type_, reason, message)

    async def emit(self, obj: dict, type_: str, reason: str, message: str) -> dict | None:
        """Write the Event now: a new one, or one more count on the identical Event seen recently."""
        key = self._key(obj, type_, reason, message)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # one identical event at a time: the second one counts into the first
            seen = self._seen.get(key)
            if seen is not None and time.monotonic() - seen.last_monotonic < AGGREGATE_WINDOW:
                out = await self._count_again(seen)
                if out is not None:
                    return out
            return await self._create(key, obj, type_, reason, message)

    async def _count_again(self, seen: _Seen) -> dict | None:
        """Patch count and lastTimestamp of the existing Event; None if it is gone (then a new one is made)."""
        ts = now_iso()
        try:
            out = await self.client.patch("events", seen.name, {"count": seen.count + 1, "lastTimestamp": ts},
                                          namespace=seen.namespace)
        except ApiError as exc:
            if not exc.not_found:
                log.debug("event %s not updated: %s", seen.name, exc)
            return None
        seen.count += 1
        seen.last_monotonic = time.monotonic()
        return out

    async def _create(self, key: tuple, obj: dict, type_: str, reason: str, message: str) -> dict | None:
        md = obj.get("metadata", {})
        ns = md.get("namespace") or "default"
        self._seq += 1
        ts = now_iso()
        name = f"{md.get('name', 'x')}.{time.time_ns():x}{os.getpid() % 4096:03x}{self._seq % 4096:03x}"
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": object_ref(obj),
            "reason": reason, "message": message, "type": type_,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "firstTimestamp": ts, "lastTimestamp": ts, "eventTime": now_micro(), "count": 1,
            "reportingComponent": self.component, "reportingInstance": self.host or self.component,
            "action": reason,
        }
        try:
            out = await self.client.create("events", body, namespace=ns)
        except ApiError as exc:
            log.debug("event %s/%s not recorded: %s", reason, name, exc)
            return None
        self._seen[key] = _Seen(name, ns, 1, ts, time.monotonic())
        self._seen.move_to_end(key)
        while len(self._seen) > MAX_REMEMBERED:
            old, _ = self._seen.popitem(last=False)
            if old in self._locks and not self._locks[old].locked():
                del self._locks[old]
        return out

    async def flush(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
