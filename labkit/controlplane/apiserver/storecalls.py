"""How a request's registry call reaches the store without stalling the event loop needlessly.

The store says what it costs (see :class:`~labkit.controlplane.store.Store`): a store held in
memory (``in_memory``) is called on the loop, because a hop to a thread costs more than the call.
Any other store is called from worker threads, so that requests overlap - except a write that is
alone in flight while the store's writer is idle, which runs on the loop (its hop would cost more
than its fsync). A store with ``group_commit`` gets creates that arrive together queued with
``create_async``: the loop prepares each object, the store commits them all in one transaction,
and the loop answers each request once that commit is on disk.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any

from labkit.controlplane.store import KeyExists, Store, Unavailable

from . import errors
from .registry import Registry
from .resources import ResourceType


class StoreCalls:
    """Runs registry calls inline, on worker threads, or in the store's group commit."""

    def __init__(self, store: Store, registry: Registry, workers: int = 8):
        self.store = store
        self.registry = registry
        self.loop: asyncio.AbstractEventLoop | None = None  # set by the server once it runs
        self._pool = None if store.in_memory else concurrent.futures.ThreadPoolExecutor(
            workers, thread_name_prefix="labkit-api")
        self._writes_in_flight = 0
        self._acks: list[tuple[asyncio.Future, Any, BaseException | None]] = []  # see _ack
        self._acks_lock = threading.Lock()

    def shutdown(self) -> None:
        """Stop the worker threads (calls already running finish on their own)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)

    async def call(self, fn, *args):
        """Run a (blocking) registry call: inline for a store held in memory, on a worker thread otherwise."""
        if self._pool is None:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def call_write(self, fn, *args):
        """Run a registry write: like :meth:`call`, but on the loop when it is the only write in flight.

        If other writes arrived in the same batch of requests, every write goes to a worker
        thread and the store's group commit shares one fsync between them. A lone write saves
        the two thread wake-ups instead.
        """
        if self._pool is None:
            return fn(*args)
        self._writes_in_flight += 1
        try:
            if not self.store.writer_busy and await self._alone():
                return fn(*args)
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            self._writes_in_flight -= 1

    async def _alone(self) -> bool:
        """Is this (counted) write the only one in flight, with the store idle? One yield first lets
        the writes that arrived in the same batch of requests count themselves. Never while the
        store is busy writing (a group commit, a compaction): that wait belongs off the loop."""
        await asyncio.sleep(0)
        return self._writes_in_flight == 1 and not self.store.writer_busy

    async def create(self, rt: ResourceType, ns: str | None, body: Any, dry_run: bool) -> tuple[dict, bytes]:
        """Create through the registry - with the store's group commit when it has one.

        A lone create runs on the loop (see :meth:`call_write`). Services are created the plain
        way, because allocating their addresses reads the store.
        """
        if not self.store.group_commit or dry_run or rt.plural == "services":
            return await self.call_write(self.registry.create, rt, ns, body, dry_run)
        self._writes_in_flight += 1
        try:
            if await self._alone():
                return self.registry.create(rt, ns, body)
            obj, value = self.registry.prepare_create(rt, ns, body)
            acked: asyncio.Future = asyncio.get_running_loop().create_future()
            name = obj["metadata"]["name"]
            self.store.create_async(rt.key(ns, name), value, lambda kv, err: self._ack(acked, kv, err))
            try:
                kv = await acked
            except KeyExists:
                raise errors.already_exists(rt.plural, rt.group, name) from None
            except Unavailable as exc:
                raise errors.unavailable(f"the storage backend is unavailable: {exc}") from exc
            return self.registry.created(obj, value, kv)
        finally:
            self._writes_in_flight -= 1

    def _ack(self, fut: asyncio.Future, kv: Any, err: BaseException | None) -> None:
        """On the store's committing thread: hand a create's outcome to the loop.

        The acks of one commit arrive together; the first schedules one callback on the loop
        that settles them all, so a commit of many creates wakes the loop once.
        """
        with self._acks_lock:
            self._acks.append((fut, kv, err))
            first = len(self._acks) == 1
        if first and self.loop is not None:
            try:
                self.loop.call_soon_threadsafe(self._settle_acks)
            except RuntimeError:  # the loop closed: the server is stopping
                pass

    def _settle_acks(self) -> None:
        with self._acks_lock:
            acks, self._acks = self._acks, []
        for fut, kv, err in acks:
            if not fut.done():  # the client may have gone away meanwhile
                if err is not None:
                    fut.set_exception(err)
                else:
                    fut.set_result(kv)
