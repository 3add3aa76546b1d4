"""Record core/v1 Events: the trail ``kubectl describe`` shows under a pod or node.

Every component says what it did (Scheduled, Pulled, Started, SuccessfulCreate, ...) through
Events, so a reader can follow a pod across components with nothing but the API.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import time

from labkit.client.rest import ApiError, Client

log = logging.getLogger(__name__)


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

    async def emit(self, obj: dict, type_: str, reason: str, message: str) -> dict | None:
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
            return await self.client.create("events", body, namespace=ns)
        except ApiError as exc:
            log.debug("event %s/%s not recorded: %s", reason, name, exc)
            return None

    async def flush(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
