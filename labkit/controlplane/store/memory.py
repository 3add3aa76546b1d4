"""The in-memory store: the MVCC model with nothing else in the way.

It keeps, per key, every version since the last compaction, plus one ordered log of events for
watches that start in the past. It is the fastest backend and forgets everything when the
process ends, which is exactly what a unit test or a throw-away notebook cluster wants.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable

from labkit.controlplane.store.base import (
    Compacted,
    Conflict,
    Event,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    KeyValue,
    Store,
    StoreError,
    Watch,
)
from labkit.controlplane.store.fanout import QueueWatch, WatcherSet


class MemoryStore(Store):
    """MVCC key-value store held in this process's memory."""

    name = "memory"
    in_memory = True

    @property
    def writer_busy(self) -> bool:
        """Never: a write holds the lock for microseconds and does no I/O."""
        return False

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._rev = 1  # a fresh etcd also starts at revision 1
        self._floor = 0
        self._current: dict[str, KeyValue] = {}
        # key -> [(revision, KeyValue or None for a delete)], oldest first
        self._versions: dict[str, list[tuple[int, KeyValue | None]]] = {}
        self._keys: list[str] = []  # every key in _versions, sorted, for prefix ranges
        self._log: list[Event] = []
        self._log_revs: list[int] = []
        self._watchers = WatcherSet()

    # ---- reads -------------------------------------------------------------------------
    @property
    def revision(self) -> int:
        return self._rev

    @property
    def compact_revision(self) -> int:
        return self._floor

    def _check_read(self, revision: int) -> None:
        if revision < self._floor:
            raise Compacted(f"revision {revision} has been compacted (the floor is {self._floor})")
        if revision > self._rev:
            raise FutureRevision(f"revision {revision} is in the future (the store is at {self._rev})")

    def _at(self, key: str, revision: int) -> KeyValue | None:
        versions = self._versions.get(key)
        if not versions:
            return None
        i = bisect.bisect_right(versions, revision, key=lambda v: v[0])
        return versions[i - 1][1] if i else None

    def get(self, key: str, revision: int | None = None) -> KeyValue | None:
        with self._lock:
            if revision is None or revision == self._rev:
                return self._current.get(key)
            self._check_read(revision)
            return self._at(key, revision)

    def list(self, prefix: str, revision: int | None = None, limit: int | None = None,
             start_after: str | None = None) -> tuple[list[KeyValue], int]:
        with self._lock:
            rev = self._rev if revision is None else revision
            self._check_read(rev)
            latest = rev == self._rev
            i = bisect.bisect_left(self._keys, prefix)
            if start_after is not None:
                i = max(i, bisect.bisect_right(self._keys, start_after))
            out: list[KeyValue] = []
            keys = self._keys
            while i < len(keys) and keys[i].startswith(prefix):
                kv = self._current.get(keys[i]) if latest else self._at(keys[i], rev)
                if kv is not None:
                    out.append(kv)
                    if limit and len(out) >= limit:
                        break
                i += 1
            return out, rev

    # ---- writes ------------------------------------------------------------------------
    def _record(self, key: str, kv: KeyValue | None, event: Event) -> None:
        """Append one change at revision self._rev (already bumped); caller holds the lock."""
        if kv is None:
            self._current.pop(key, None)
        else:
            self._current[key] = kv
        versions = self._versions.get(key)
        if versions is None:
            versions = self._versions[key] = []
            bisect.insort(self._keys, key)
        versions.append((self._rev, kv))
        self._log.append(event)
        self._log_revs.append(self._rev)
        self._watchers.push([event])

    def create(self, key: str, value: bytes) -> KeyValue:
        with self._lock:
            if key in self._current:
                raise KeyExists(key)
            self._rev += 1
            kv = KeyValue(key, bytes(value), self._rev, self._rev, 1)
            self._record(key, kv, Event("PUT", kv, None))
            return kv

    def update(self, key: str, value: bytes, expected_mod_revision: int | None = None) -> KeyValue:
        with self._lock:
            prev = self._current.get(key)
            if prev is None:
                raise KeyNotFound(key)
            if expected_mod_revision is not None and prev.mod_revision != expected_mod_revision:
                raise Conflict(f"{key}: modified at revision {prev.mod_revision}, "
                               f"expected {expected_mod_revision}")
            self._rev += 1
            kv = KeyValue(key, bytes(value), prev.create_revision, self._rev, prev.version + 1)
            self._record(key, kv, Event("PUT", kv, prev))
            return kv

    def delete(self, key: str, expected_mod_revision: int | None = None) -> KeyValue:
        with self._lock:
            prev = self._current.get(key)
            if prev is None:
                raise KeyNotFound(key)
            if expected_mod_revision is not None and prev.mod_revision != expected_mod_revision:
                raise Conflict(f"{key}: modified at revision {prev.mod_revision}, "
                               f"expected {expected_mod_revision}")
            self._rev += 1
            gone = KeyValue(key, prev.value, prev.create_revision, self._rev, prev.version)
            self._record(key, None, Event("DELETE", gone, prev))
            return prev

    # ---- watch and compaction ----------------------------------------------------------
    def watch(self, prefix: str, start_revision: int, callback: Callable[[list[Event]], None],
              on_error: Callable[[StoreError], None] | None = None) -> Watch:
        with self._lock:
            start = self._rev + 1 if start_revision <= 0 else start_revision
            if start < self._floor:
                raise Compacted(f"cannot watch from revision {start}: compacted up to {self._floor}")
            w = QueueWatch(prefix, start, callback, on_error, on_cancel=self._watchers.remove)
            i = bisect.bisect_left(self._log_revs, start)
            w.push(self._log[i:])
            self._watchers.add(w)
            return w

    def compact(self, revision: int) -> None:
        with self._lock:
            if revision > self._rev:
                raise FutureRevision(f"cannot compact at {revision}: the store is at {self._rev}")
            if revision <= self._floor:
                return
            self._floor = revision
            i = bisect.bisect_left(self._log_revs, revision)
            del self._log[:i]
            del self._log_revs[:i]
            dead: list[str] = []
            for key, versions in self._versions.items():
                # keep the newest version at or below the floor (reads at the floor need it),
                # unless it is a delete older than the floor; keep everything newer.
                j = bisect.bisect_right(versions, revision, key=lambda v: v[0])
                keep_from = j - 1 if j else 0
                if j and versions[j - 1][1] is None and versions[j - 1][0] < revision:
                    keep_from = j
                if keep_from:
                    del versions[:keep_from]
                if not versions:
                    dead.append(key)
            for key in dead:
                del self._versions[key]
            if dead:
                gone = set(dead)
                self._keys = [k for k in self._keys if k not in gone]

    def close(self) -> None:
        self._watchers.cancel_all()
