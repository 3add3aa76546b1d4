"""The embedded default store: one append-only SQLite table, in the manner of k3s's kine.

Every write *appends* a row; nothing is updated in place. The row's autoincrement ``id`` is the
global revision, so "the state at revision R" is simply the newest row per key with ``id <= R``
that is not a delete, and a watch is "every row with ``id > R``, in order". A unique index on
``(name, prev_revision)`` turns compare-and-swap into a constraint: two writers that both start
from the same previous row cannot both append after it.

Durability: WAL journal with ``synchronous=FULL``, so a write is acknowledged only after its
commit reached the disk. (``sqlite:PATH?sync=normal`` skips that fsync: a write then survives a
crash of the process - it is in the kernel's page cache - but not a power cut.) Concurrent writers share commits (group commit): the first one to take
the write lock commits everything queued behind it in one transaction, one fsync for many writes,
and each caller returns only after the commit holding its write.

It is one file past 500 lines on purpose: the revision log, compare-and-swap through the unique
index and the group-commit leader/follower hand-off are one job and must be read together.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from labkit.controlplane.store.base import (
    Compacted,
    Conflict,
    Event,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    KeyValue,
    NoSpace,
    Store,
    StoreError,
    Unavailable,
    Watch,
)
from labkit.controlplane.store.fanout import QueueWatch, WatcherSet

log = logging.getLogger(__name__)

TABLE = "kine"
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    lease INTEGER NOT NULL DEFAULT 0,
    value BLOB,
    old_value BLOB,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS {TABLE}_name_id ON {TABLE} (name, id);
CREATE UNIQUE INDEX IF NOT EXISTS {TABLE}_name_prev_revision ON {TABLE} (name, prev_revision);
CREATE TABLE IF NOT EXISTS {TABLE}_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
COLUMNS = "id, name, created, deleted, create_revision, prev_revision, value, old_value, version"
POLL_SECONDS = 0.2  # how often watches look for rows written by other processes


def _prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix``."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            return prefix[:-1] + chr(last + 1)
        prefix = prefix[:-1]
    return None


def _row_event(row: tuple) -> Event:
    rid, name, created, deleted, crev, prev, value, old_value, version = row
    crev = crev or rid  # a creating row's create_revision is its own id
    value = bytes(value or b"")
    if deleted:
        gone = KeyValue(name, value, crev, rid, version)
        return Event("DELETE", gone, KeyValue(name, bytes(old_value or b""), crev, prev, version))
    kv = KeyValue(name, value, crev, rid, version)
    if created:
        return Event("PUT", kv, None)
    return Event("PUT", kv, KeyValue(name, bytes(old_value or b""), crev, prev, version - 1))


class _Op:
    """One queued write; ``gate`` is held until the op is done or its caller must lead a commit.

    An op queued by :meth:`SqliteStore.create_async` has no caller waiting on it: ``on_done`` is
    called instead, and the store's committer thread leads in its place.
    """

    __slots__ = ("fn", "error", "event", "done", "gate", "on_done")

    def __init__(self, fn: Callable[[sqlite3.Cursor], Event],
                 on_done: Callable[[KeyValue | None, BaseException | None], None] | None = None) -> None:
        self.fn = fn
        self.error: BaseException | None = None
        self.event: Event | None = None
        self.done = False
        self.on_done = on_done
        self.gate = threading.Lock()
        self.gate.acquire()

    def wake(self) -> None:
        """Done: open the caller's gate, or tell the caller that did not wait."""
        if self.on_done is None:
            self.gate.release()
            return
        try:
            self.on_done(self.event.kv if self.event is not None else None, self.error)
        except Exception:  # a broken callback must not stop the other writers from waking
            log.exception("sqlite store: create_async callback failed")


class SqliteStore(Store):
    """A kine-style MVCC log in one SQLite file; several processes may share the file."""

    name = "sqlite"
    group_commit = True

    def __init__(self, path: str | Path, synchronous: str = "FULL") -> None:
        self.synchronous = synchronous.upper()
        if self.synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"sqlite sync={synchronous!r}: use 'full' (every commit reaches the disk) "
                             "or 'normal' (survives a process crash, not a power cut)")
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"sqlite store path {self.path} is a directory: give a file name")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._wconn = self._connect()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open sqlite store {self.path}: {exc}") from exc
        with self._wconn:
            self._wconn.executescript(SCHEMA)
            # a fresh store is at revision 1, like a fresh etcd: the first write gets revision 2
            self._wconn.execute("INSERT INTO sqlite_sequence (name, seq) SELECT ?, 1 WHERE NOT EXISTS "
                                "(SELECT 1 FROM sqlite_sequence WHERE name = ?)", (TABLE, TABLE))
        self._wlock = threading.Lock()  # the one writer connection, and event dispatch order
        self._qlock = threading.Lock()
        self._pending: list[_Op] = []
        self._leading = False  # a writer is committing the queue (see _submit)
        self._committer: threading.Thread | None = None  # leads for create_async callers
        self._committer_gate = threading.Lock()
        self._committer_gate.acquire()
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all_conns = [self._wconn]
        self._watchers = WatcherSet()
        self._tail = self._read_revision(self._wconn)  # last revision handed to the watchers
        self._closed = threading.Event()
        self._poller: threading.Thread | None = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False,
                               timeout=10.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA busy_timeout=10000")
        # lists read rows in key order, scattered across a file written in revision order: map
        # the file instead of read()ing page by page, and keep more pages cached
        conn.execute("PRAGMA mmap_size=1073741824")
        conn.execute("PRAGMA cache_size=-16384")
        return conn

    # ---- connections -------------------------------------------------------------------
    def _reader(self) -> sqlite3.Connection:
        try:
            return self._readers.get_nowait()
        except queue.Empty:
            conn = self._connect()
            self._all_conns.append(conn)
            return conn

    def _read(self, fn: Callable[[sqlite3.Connection], object], snapshot: bool = True) -> object:
        """Run ``fn`` on a reader connection; ``snapshot`` holds one read transaction across its queries."""
        if self._closed.is_set():
            raise StoreError(f"sqlite store {self.path} is closed")
        conn = self._reader()
        try:
            if not snapshot:  # a single statement is its own snapshot
                return fn(conn)
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            raise Unavailable(f"sqlite store {self.path}: {exc}") from exc
        finally:
            self._readers.put(conn)

    @staticmethod
    def _read_revision(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (TABLE,)).fetchone()
        return int(row[0]) if row else 1

    @staticmethod
    def _read_floor(conn: sqlite3.Connection) -> int:
        row = conn.execute(f"SELECT value FROM {TABLE}_meta WHERE key = 'compact_revision'").fetchone()
        return int(row[0]) if row else 0

    def _check_read(self, conn: sqlite3.Connection, revision: int) -> int:
        current = self._read_revision(conn)
        floor = self._read_floor(conn)
        if revision < floor:
            raise Compacted(f"revision {revision} has been compacted (the floor is {floor})")
        if revision > current:
            raise FutureRevision(f"revision {revision} is in the future (the store is at {current})")
        return current

    # ---- reads -------------------------------------------------------------------------
    @property
    def revision(self) -> int:
        return self._read(self._read_revision, snapshot=False)  # type: ignore[return-value]

    @property
    def compact_revision(self) -> int:
        return self._read(self._read_floor, snapshot=False)  # type: ignore[return-value]

    def get(self, key: str, revision: int | None = None) -> KeyValue | None:
        def fn(conn: sqlite3.Connection) -> KeyValue | None:
            if revision is not None:
                self._check_read(conn, revision)
                row = conn.execute(f"SELECT {COLUMNS} FROM {TABLE} WHERE name = ? AND id <= ? "
                                   "ORDER BY id DESC LIMIT 1", (key, revision)).fetchone()
            else:
                row = conn.execute(f"SELECT {COLUMNS} FROM {TABLE} WHERE name = ? "
                                   "ORDER BY id DESC LIMIT 1", (key,)).fetchone()
            if row is None or row[3]:
                return None
            return _row_event(row).kv

        return self._read(fn, snapshot=revision is not None)  # type: ignore[return-value]

    def list(self, prefix: str, revision: int | None = None, limit: int | None = None,
             start_after: str | None = None) -> tuple[list[KeyValue], int]:
        end = _prefix_end(prefix)

        def fn(conn: sqlite3.Connection) -> tuple[list[KeyValue], int]:
            if revision is None:
                rev = self._read_revision(conn)
            else:
                self._check_read(conn, revision)
                rev = revision
            out: list[KeyValue] = []
            after = start_after
            page = max(limit or 0, 500 if limit else 5000)
            while True:
                where = ["name >= ?", "id <= ?"]
                args: list = [prefix, rev]
                if end is not None:
                    where.append("name < ?")
                    args.append(end)
                if after is not None:
                    where.append("name > ?")
                    args.append(after)
                rows = conn.execute(
                    f"SELECT {', '.join('k.' + c.strip() for c in COLUMNS.split(','))} FROM {TABLE} k "
                    f"JOIN (SELECT MAX(id) AS mid FROM {TABLE} WHERE {' AND '.join(where)} "
                    f"GROUP BY name ORDER BY name LIMIT ?) m ON k.id = m.mid",
                    (*args, page)).fetchall()
                rows.sort(key=lambda r: r[1])  # cheaper here than a sorter full of values in SQLite
                for row in rows:
                    if not row[3]:
                        out.append(_row_event(row).kv)
                        if limit and len(out) >= limit:
                            return out, rev
                if len(rows) < page:
                    return out, rev
                after = rows[-1][1]

        return self._read(fn)  # type: ignore[return-value]

    # ---- writes ------------------------------------------------------------------------
    @property
    def writer_busy(self) -> bool:
        """True while a commit, a compaction or a watch catch-up holds the writer: a write now would wait."""
        return self._leading or self._wlock.locked()

    def _latest(self, cur: sqlite3.Cursor, key: str) -> tuple | None:
        return cur.execute(f"SELECT {COLUMNS} FROM {TABLE} WHERE name = ? ORDER BY id DESC LIMIT 1",
                           (key,)).fetchone()

    def _append(self, cur: sqlite3.Cursor, key: str, created: int, deleted: int, crev: int, prev: int,
                value: bytes, old_value: bytes | None, version: int) -> int:
        try:
            cur.execute(f"INSERT INTO {TABLE} (name, created, deleted, create_revision, prev_revision, "
                        "value, old_value, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (key, created, deleted, crev, prev, value, old_value, version))
        except sqlite3.IntegrityError as exc:  # another writer appended after the same row
            raise Conflict(f"{key}: changed concurrently") from exc
        return int(cur.lastrowid)

    def _submit(self, fn: Callable[[sqlite3.Cursor], Event]) -> Event:
        """Run one write in the next commit; return once that commit is on disk.

        Group commit, leader and followers: the first writer to arrive leads - it commits every
        write queued so far in one transaction (one fsync) - while the writers that arrive
        meanwhile sleep on their own gate. The leader opens the gates of the writes it committed
        and hands the lead to the oldest write still queued, whose batch is then everything that
        piled up during this commit. Nobody spins on the write lock just to find its write done.
        """
        op = _Op(fn)
        with self._qlock:
            self._pending.append(op)
            lead = not self._leading
            self._leading = True
        if not lead:
            op.gate.acquire()  # opened by a leader: our write is done, or it is our turn to lead
        if not op.done:
            self._lead()
        if op.error is not None:
            raise op.error
        return op.event  # type: ignore[return-value]

    def _lead(self) -> None:
        """Commit everything queued (our own write included), then pass the lead on."""
        try:
            with self._wlock:
                with self._qlock:
                    batch, self._pending = self._pending, []
                self._commit(batch)
        finally:
            with self._qlock:
                if self._pending:
                    self._hand_lead(self._pending[0])  # the oldest waiter leads the next commit
                else:
                    self._leading = False

    def _hand_lead(self, op: _Op) -> None:
        """Make ``op``'s caller lead the next commit - or the committer thread, if nobody waits for op.

        Called with the queue lock held, as is every start and end of the committer thread.
        """
        if op.on_done is None:
            op.gate.release()
            return
        if self._committer is None:
            self._committer = threading.Thread(target=self._commit_loop, name="labkit-sqlite-commit", daemon=True)
            self._committer.start()
        self._committer_gate.release()

    def _commit_loop(self) -> None:
        """The committer thread: leads whenever the lead falls to a write whose caller did not wait."""
        while True:
            if self._closed.is_set():
                with self._qlock:
                    if not self._leading:  # nothing handed to us, and a later hand-off starts a new thread
                        self._committer = None
                        return
            if self._committer_gate.acquire(timeout=1.0):
                self._lead()

    def create_async(self, key: str, value: bytes,
                     on_done: Callable[[KeyValue | None, BaseException | None], None]) -> None:
        """Queue a create for the next commit without waiting for it.

        ``on_done(kv, error)`` runs on the committing thread once that commit is on disk (or has
        failed); like a :class:`NonBlocking` watch callback it must return at once. For callers
        that must not block - the apiserver's event loop - yet want to share commits: many
        creates queued this way are committed by one thread, one fsync for all of them.
        """
        op = _Op(self._create_fn(key, value), on_done)
        with self._qlock:
            self._pending.append(op)
            lead = not self._leading
            self._leading = True
            if lead:
                self._hand_lead(op)

    def _commit(self, batch: list[_Op]) -> None:
        """Run every queued write in one transaction, then wake their writers (caller holds the write lock)."""
        try:
            self._commit_batch(batch)
        finally:  # whatever happened, no writer may sleep on its gate forever
            for op in batch:
                if op.event is None and op.error is None:
                    op.error = Unavailable(f"sqlite store {self.path}: the write was not committed")
                op.done = True
                op.wake()

    def _commit_batch(self, batch: list[_Op]) -> None:
        if not batch:
            return
        if self._closed.is_set():
            for op in batch:
                op.error = StoreError(f"sqlite store {self.path} is closed")
            return
        cur = self._wconn.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
            for op in batch:
                # No savepoint needed: an op either fails before it writes (KeyExists, Conflict...)
                # or its one INSERT fails, and SQLite undoes a failed statement by itself.
                try:
                    op.event = op.fn(cur)
                except Exception as exc:  # noqa: BLE001 - handed back to the op's own caller
                    op.error = self._write_error(exc) if isinstance(exc, sqlite3.Error) else exc
            cur.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._wconn.in_transaction:
                self._wconn.execute("ROLLBACK")
            for op in batch:
                op.event = None
                op.error = self._write_error(exc)
        # delivered before the writers wake: a writer that returns finds its event in the watches
        events = [op.event for op in batch if op.event is not None]
        if events:
            try:
                self._deliver(events)
            except sqlite3.Error:  # committed all the same: the poller delivers them on its next tick
                log.warning("sqlite store %s: watch delivery deferred to the poller", self.path, exc_info=True)

    def _write_error(self, exc: sqlite3.Error) -> Unavailable:
        """A failed write as the apiserver should report it; a full disk says so plainly."""
        if getattr(exc, "sqlite_errorcode", None) == getattr(sqlite3, "SQLITE_FULL", 13) or "disk is full" in str(exc):
            return NoSpace(f"sqlite store {self.path}: database space exceeded ({exc}): the disk under the "
                           "store is full; reads still work, writes fail until space is freed")
        return Unavailable(f"sqlite store {self.path}: write failed: {exc}")

    def _create_fn(self, key: str, value: bytes) -> Callable[[sqlite3.Cursor], Event]:
        def fn(cur: sqlite3.Cursor) -> Event:
            row = self._latest(cur, key)
            if row is not None and not row[3]:
                raise KeyExists(key)
            rid = self._append(cur, key, 1, 0, 0, row[0] if row else 0, bytes(value), None, 1)
            return Event("PUT", KeyValue(key, bytes(value), rid, rid, 1), None)
        return fn

    def create(self, key: str, value: bytes) -> KeyValue:
        return self._submit(self._create_fn(key, value)).kv

    def _check_current(self, cur: sqlite3.Cursor, key: str, expected: int | None) -> KeyValue:
        row = self._latest(cur, key)
        if row is None or row[3]:
            raise KeyNotFound(key)
        kv = _row_event(row).kv
        if expected is not None and kv.mod_revision != expected:
            raise Conflict(f"{key}: modified at revision {kv.mod_revision}, expected {expected}")
        return kv

    def update(self, key: str, value: bytes, expected_mod_revision: int | None = None) -> KeyValue:
        def fn(cur: sqlite3.Cursor) -> Event:
            prev = self._check_current(cur, key, expected_mod_revision)
            rid = self._append(cur, key, 0, 0, prev.create_revision, prev.mod_revision, bytes(value),
                               prev.value, prev.version + 1)
            kv = KeyValue(key, bytes(value), prev.create_revision, rid, prev.version + 1)
            return Event("PUT", kv, prev)

        return self._submit(fn).kv

    def delete(self, key: str, expected_mod_revision: int | None = None) -> KeyValue:
        def fn(cur: sqlite3.Cursor) -> Event:
            prev = self._check_current(cur, key, expected_mod_revision)
            rid = self._append(cur, key, 0, 1, prev.create_revision, prev.mod_revision, prev.value,
                               prev.value, prev.version)
            gone = KeyValue(key, prev.value, prev.create_revision, rid, prev.version)
            return Event("DELETE", gone, prev)

        return self._submit(fn).prev_kv  # type: ignore[return-value]

    # ---- watch -------------------------------------------------------------------------
    def _rows_after(self, conn: sqlite3.Connection, after: int, upto: int | None = None,
                    prefix: str = "") -> list[Event]:
        sql = f"SELECT {COLUMNS} FROM {TABLE} WHERE id > ?"
        args: list = [after]
        if upto is not None:
            sql += " AND id <= ?"
            args.append(upto)
        if prefix:
            sql += " AND name >= ?"
            args.append(prefix)
            end = _prefix_end(prefix)
            if end is not None:
                sql += " AND name < ?"
                args.append(end)
        return [_row_event(r) for r in conn.execute(sql + " ORDER BY id", args)]

    def _deliver(self, events: list[Event]) -> None:
        """Hand freshly committed events to the watchers (caller holds the write lock)."""
        if not len(self._watchers):
            self._tail = events[-1].revision
            return
        if events[0].revision != self._tail + 1:  # another process wrote in between: read it all
            events = self._rows_after(self._wconn, self._tail, events[-1].revision)
        if events:
            self._watchers.push(events)
            self._tail = events[-1].revision

    def _catch_up(self) -> None:
        """Deliver rows other processes appended (caller holds the write lock)."""
        current = self._read_revision(self._wconn)
        if current > self._tail:
            events = self._rows_after(self._wconn, self._tail, current)
            if events:
                self._watchers.push(events)
            self._tail = current

    def _poll(self) -> None:
        while not self._closed.wait(POLL_SECONDS):
            if not len(self._watchers):
                continue
            try:
                with self._wlock:
                    if not self._closed.is_set():
                        self._catch_up()
            except sqlite3.Error:
                continue  # busy or locked by another process: try again on the next tick

    def watch(self, prefix: str, start_revision: int, callback: Callable[[list[Event]], None],
              on_error: Callable[[StoreError], None] | None = None) -> Watch:
        with self._wlock:
            self._catch_up()
            floor = self._read_floor(self._wconn)
            start = self._tail + 1 if start_revision <= 0 else start_revision
            if start < floor:
                raise Compacted(f"cannot watch from revision {start}: compacted up to {floor}")
            w = QueueWatch(prefix, start, callback, on_error, on_cancel=self._watchers.remove,
                           name="sqlite-watch")
            if start <= self._tail:
                w.push(self._rows_after(self._wconn, start - 1, self._tail, prefix))
            self._watchers.add(w)
            if self._poller is None:
                self._poller = threading.Thread(target=self._poll, name="labkit-sqlite-poll", daemon=True)
                self._poller.start()
            return w

    # ---- compaction --------------------------------------------------------------------
    def compact(self, revision: int) -> None:
        with self._wlock:
            self._catch_up()
            current = self._read_revision(self._wconn)
            if revision > current:
                raise FutureRevision(f"cannot compact at {revision}: the store is at {current}")
            if revision <= self._read_floor(self._wconn):
                return
            cur = self._wconn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                # superseded rows (a newer row for the name exists at or below the floor) and
                # deletes older than the floor: the state at the floor does not need them
                cur.execute(
                    f"DELETE FROM {TABLE} WHERE id < :floor AND (deleted = 1 OR EXISTS ("
                    f"SELECT 1 FROM {TABLE} AS newer WHERE newer.name = {TABLE}.name "
                    f"AND newer.id > {TABLE}.id AND newer.id <= :floor))", {"floor": revision})
                cur.execute(f"INSERT INTO {TABLE}_meta (key, value) VALUES ('compact_revision', ?) "
                            "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (revision,))
                cur.execute("COMMIT")
            except sqlite3.Error as exc:
                self._wconn.execute("ROLLBACK")
                raise Unavailable(f"sqlite store {self.path}: compaction failed: {exc}") from exc

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._watchers.cancel_all()
        if self._poller is not None:
            self._poller.join(timeout=2)
        with self._qlock:
            committer = self._committer
            if committer is not None and not self._leading:  # idle: wake it to see the close
                self._leading = True
                self._committer_gate.release()
        if committer is not None:
            committer.join(timeout=5)
        with self._wlock:
            for conn in self._all_conns:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
