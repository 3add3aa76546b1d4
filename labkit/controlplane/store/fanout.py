"""Delivering store events to watchers, each on its own thread.

A writer must never wait for a slow watcher, and a watcher must see events in revision order
with nothing missing. So every watcher owns a queue: the backend pushes events into it (in
order, under the backend's own lock) and a per-watcher thread drains whatever has piled up into
one batch and hands it to the callback. A slow callback therefore gets bigger batches, not gaps.

A callback that only hands the events on and never blocks - the apiserver's watch cache, which
passes them to its event loop - can say so by being wrapped in :class:`NonBlocking`. The backend
then calls it directly on the writer's thread, still in revision order: that saves waking a
delivery thread (and a GIL hand-over) for every single write, which is most of a write's cost
after the fsync.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable

from labkit.controlplane.store.base import Event, StoreError, Watch

log = logging.getLogger(__name__)

_STOP = object()


class NonBlocking:
    """Marks a watch callback (and the watch's error callback) as safe to run on the writer's thread.

    Such a callback must return at once and must not call the store: it runs while the backend
    holds its write lock, so a slow one would stall every writer.
    """

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[list[Event]], None]) -> None:
        self.fn = fn

    def __call__(self, events: list[Event]) -> None:
        self.fn(events)


class QueueWatch(Watch):
    """A watch whose events are queued by a backend and delivered by a private thread.

    A :class:`NonBlocking` callback gets no queue and no thread: :meth:`push` calls it directly.
    """

    def __init__(self, prefix: str, start_revision: int, callback: Callable[[list[Event]], None],
                 on_error: Callable[[StoreError], None] | None = None,
                 on_cancel: Callable[[QueueWatch], None] | None = None, name: str = "watch") -> None:
        self.prefix = prefix
        self.start_revision = start_revision
        self.callback = callback
        self.on_error = on_error
        self.error: StoreError | None = None
        self._on_cancel = on_cancel
        self._cancelled = threading.Event()
        self._inline = isinstance(callback, NonBlocking)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        if not self._inline:
            self._thread = threading.Thread(target=self._run, name=f"labkit-store-{name}", daemon=True)
            self._thread.start()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def matches(self, key: str) -> bool:
        return key.startswith(self.prefix)

    def push(self, events: Iterable[Event]) -> None:
        """Queue the events this watch cares about (called by the backend, in revision order)."""
        if self._inline:
            if self._cancelled.is_set():
                return
            batch = [ev for ev in events
                     if ev.revision >= self.start_revision and ev.kv.key.startswith(self.prefix)]
            if batch:
                try:
                    self.callback(batch)
                except Exception:  # a broken callback must not fail the write that triggered it
                    log.exception("store watch callback failed")
            return
        for ev in events:
            if ev.revision >= self.start_revision and ev.kv.key.startswith(self.prefix):
                self._queue.put(ev)

    def fail(self, exc: StoreError) -> None:
        """End the watch because the backend can no longer continue it (e.g. compacted)."""
        self.error = exc
        if self._inline:
            if not self._cancelled.is_set():
                self._end_with(exc)
            return
        self._queue.put(exc)

    def _end_with(self, err: StoreError) -> None:
        if self.on_error is not None:
            try:
                self.on_error(err)
            except Exception:
                log.exception("store watch error callback failed")
        self._cancelled.set()
        if self._on_cancel is not None:
            self._on_cancel(self)

    def cancel(self) -> None:
        if self._cancelled.is_set():
            return
        self._cancelled.set()
        self._queue.put(_STOP)
        if self._on_cancel is not None:
            self._on_cancel(self)
        if self._thread is not None and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch: list[Event] = []
            stop = False
            err: StoreError | None = None
            while True:
                if item is _STOP:
                    stop = True
                elif isinstance(item, StoreError):
                    err = item
                else:
                    batch.append(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if self._cancelled.is_set():
                return
            if batch:
                try:
                    self.callback(batch)
                except Exception:  # a broken callback must not kill delivery for the others
                    log.exception("store watch callback failed")
            if err is not None:
                self._end_with(err)
                return
            if stop:
                return


class WatcherSet:
    """The live watches of one store; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watches: list[QueueWatch] = []

    def add(self, w: QueueWatch) -> None:
        with self._lock:
            self._watches.append(w)

    def remove(self, w: QueueWatch) -> None:
        with self._lock:
            if w in self._watches:
                self._watches.remove(w)

    def __len__(self) -> int:
        return len(self._watches)

    def push(self, events: list[Event]) -> None:
        if not events:
            return
        with self._lock:
            watches = list(self._watches)
        for w in watches:
            w.push(events)

    def fail_all(self, exc: StoreError) -> None:
        with self._lock:
            watches = list(self._watches)
        for w in watches:
            w.fail(exc)

    def cancel_all(self) -> None:
        with self._lock:
            watches = list(self._watches)
        for w in watches:
            w.cancel()
