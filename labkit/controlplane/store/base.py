"""The store behind the apiserver: a small MVCC key-value interface shaped like etcd v3.

Every write bumps one global *revision*; each key remembers the revision that created it and the
one that last modified it. The apiserver uses the mod revision as an object's
``metadata.resourceVersion``, updates are compare-and-swap on it (a stale one is a 409
Conflict), and a watch replays every change after a given revision. Compaction forgets history
below a revision; asking for it afterwards raises :class:`Compacted` (HTTP 410 Gone).

Backends: ``memory``, ``sqlite`` (kine-style append-only log, the embedded default) and ``etcd``
(real etcd v3 through its JSON gateway). All pass one shared test suite.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass


class StoreError(Exception):
    pass


class KeyExists(StoreError):
    pass


class KeyNotFound(StoreError):
    pass


class Conflict(StoreError):
    """The key's mod revision is not the one the writer expected."""


class Compacted(StoreError):
    """The requested revision is below the compaction floor."""


class FutureRevision(StoreError):
    """A read asked for a revision the store has not reached yet."""


class Unavailable(StoreError):
    """The backend cannot serve writes now (e.g. etcd lost quorum); retrying later may work."""


class NoSpace(Unavailable):
    """The backend's disk is full: writes fail until space is freed, reads still work.

    etcd says "etcdserver: mvcc: database space exceeded" (its NOSPACE alarm); SQLite says
    "database or disk is full". An :class:`Unavailable`, so the apiserver answers 503 with this message.
    """


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int = 1


@dataclass(frozen=True)
class Event:
    type: str  # "PUT" or "DELETE"
    kv: KeyValue  # for DELETE: the key with its last value, mod_revision = the delete's revision
    prev_kv: KeyValue | None = None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision


class Watch(abc.ABC):
    @abc.abstractmethod
    def cancel(self) -> None: ...


class Store(abc.ABC):
    """Synchronous and thread-safe. Watch callbacks run on a store-owned thread."""

    name: str = "?"

    #: Every call answers from this process's memory in microseconds, with no I/O: a caller on an
    #: event loop (the apiserver) may call the store directly instead of hopping to a worker thread.
    in_memory: bool = False

    #: The store commits writes that arrive together in one transaction (one fsync for all), and
    #: :meth:`create_async` queues a create for that commit without blocking its caller.
    group_commit: bool = False

    @property
    @abc.abstractmethod
    def revision(self) -> int:
        """The current (latest) global revision."""

    @abc.abstractmethod
    def get(self, key: str, revision: int | None = None) -> KeyValue | None: ...

    @abc.abstractmethod
    def list(self, prefix: str, revision: int | None = None, limit: int | None = None,
             start_after: str | None = None) -> tuple[list[KeyValue], int]:
        """Keys under ``prefix`` in key order, and the revision the list was read at."""

    @abc.abstractmethod
    def create(self, key: str, value: bytes) -> KeyValue:
        """Raises KeyExists."""

    @abc.abstractmethod
    def update(self, key: str, value: bytes, expected_mod_revision: int | None = None) -> KeyValue:
        """Compare-and-swap on the mod revision (None = unconditional). Raises KeyNotFound, Conflict."""

    @abc.abstractmethod
    def delete(self, key: str, expected_mod_revision: int | None = None) -> KeyValue:
        """Returns the deleted value. Raises KeyNotFound, Conflict."""

    @abc.abstractmethod
    def watch(self, prefix: str, start_revision: int,
              callback: Callable[[list[Event]], None],
              on_error: Callable[[StoreError], None] | None = None) -> Watch:
        """Deliver every event with revision >= start_revision, in order, in batches.

        ``start_revision <= 0`` means "from now on" (the next revision), as in etcd.
        Raises Compacted when start_revision is below the compaction floor. If the backend can
        no longer continue a live watch (etcd compacted it while reconnecting), ``on_error`` is
        called once with the error and the watch ends; the caller re-lists and watches again.
        """

    @abc.abstractmethod
    def compact(self, revision: int) -> None:
        """Forget history below ``revision``; compacting at or below the current floor is a no-op."""

    @property
    def compact_revision(self) -> int:
        """The compaction floor: reads and watches below it raise Compacted (0 = never compacted)."""
        return 0

    @property
    def writer_busy(self) -> bool:
        """Whether a write started now could wait: on a commit in progress, a lock or the network.

        The apiserver makes a lone write on its event loop only while this is False. The default
        is True, the safe answer for a store that cannot tell.
        """
        return True

    def create_async(self, key: str, value: bytes,
                     on_done: Callable[[KeyValue | None, BaseException | None], None]) -> None:
        """Create a key and call ``on_done(kv, error)`` once it is stored.

        A store with :attr:`group_commit` queues the create for its next commit and returns at
        once, calling ``on_done`` from its committing thread. This default creates in the
        caller's thread, so it blocks like :meth:`create`.
        """
        try:
            kv = self.create(key, value)
        except Exception as exc:  # the caller learns of every failure through on_done
            on_done(None, exc)
            return
        on_done(kv, None)

    def close(self) -> None:
        pass
