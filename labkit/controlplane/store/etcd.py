"""The etcd store: real etcd v3, the way kube-apiserver uses it.

Kubernetes keeps every object under a key like ``/registry/pods/default/web-1`` and relies on four
etcd features, which map one to one onto this class:

* ``create`` is a transaction "if the key's create_revision is 0, put it";
* ``update``/``delete`` are transactions "if the key's mod_revision is still R, put/delete it"
  (optimistic concurrency: the object's resourceVersion *is* that mod_revision);
* ``list`` is a range read at one revision, paged with a limit;
* ``watch`` streams every change after a revision, with the previous value for deletes.
"""

from __future__ import annotations

import logging
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
    Unavailable,
    Watch,
)
from labkit.controlplane.store.etcd_gateway import Gateway, WatchStream, b64, backoff, unb64
from labkit.controlplane.store.fanout import QueueWatch

log = logging.getLogger(__name__)

PAGE = 1000  # keys per range request when listing


def _prefix_end(prefix: bytes) -> bytes:
    """etcd's range_end for "every key starting with prefix" (b"\\0" = to the end of the keyspace)."""
    p = bytearray(prefix)
    while p:
        if p[-1] < 0xFF:
            p[-1] += 1
            return bytes(p)
        p.pop()
    return b"\0"


def _kv(d: dict) -> KeyValue:
    return KeyValue(unb64(d.get("key")).decode(), unb64(d.get("value")), int(d.get("create_revision", 0)),
                    int(d.get("mod_revision", 0)), int(d.get("version", 0)))


def _event(d: dict) -> Event:
    kv = _kv(d["kv"])
    prev = _kv(d["prev_kv"]) if d.get("prev_kv") else None
    if d.get("type") == "DELETE":
        if prev is not None:
            kv = KeyValue(kv.key, prev.value, prev.create_revision, kv.mod_revision, prev.version)
        return Event("DELETE", kv, prev)
    return Event("PUT", kv, prev)


class EtcdStore(Store):
    """A Store on an etcd v3 cluster, reached through its JSON gateway."""

    name = "etcd"

    def __init__(self, endpoints: list[str], timeout: float = 3.0) -> None:
        self.gateway = Gateway(endpoints, timeout)
        self._floor = 0
        self._watches: list[_EtcdWatch] = []
        self._lock = threading.Lock()

    @property
    def endpoints(self) -> list[str]:
        return [e[0] for e in self.gateway.endpoints]

    # ---- reads -------------------------------------------------------------------------
    @property
    def revision(self) -> int:
        r = self.gateway.call("/v3/kv/range", {"key": b64("\0labkit-revision-probe"), "count_only": True})
        return int(r["header"]["revision"])

    @property
    def compact_revision(self) -> int:
        return self._floor

    def get(self, key: str, revision: int | None = None) -> KeyValue | None:
        body: dict = {"key": b64(key)}
        if revision is not None:
            body["revision"] = str(revision)
        kvs = self.gateway.call("/v3/kv/range", body).get("kvs") or []
        return _kv(kvs[0]) if kvs else None

    def list(self, prefix: str, revision: int | None = None, limit: int | None = None,
             start_after: str | None = None) -> tuple[list[KeyValue], int]:
        raw = prefix.encode()
        start = raw if start_after is None else max(raw, start_after.encode() + b"\0")
        end = b64(_prefix_end(raw))
        out: list[KeyValue] = []
        rev = revision
        while True:
            # pages of at most PAGE keys, all read at the revision of the first: one answer with
            # 100k objects would pass the gateway's message size limit
            want = PAGE if not limit else min(PAGE, limit - len(out))
            body: dict = {"key": b64(start or b"\0"), "range_end": end, "limit": str(want)}
            if rev is not None:
                body["revision"] = str(rev)
            r = self.gateway.call("/v3/kv/range", body)
            if rev is None:
                rev = int(r["header"]["revision"])
            kvs = [_kv(d) for d in r.get("kvs") or []]
            out.extend(kvs)
            if not r.get("more") or not kvs or (limit and len(out) >= limit):
                return out, rev
            start = kvs[-1].key.encode() + b"\0"

    # ---- writes ------------------------------------------------------------------------
    def _txn(self, key: str, compare: dict, success: dict) -> dict:
        return self.gateway.call("/v3/kv/txn", {
            "compare": [dict(compare, key=b64(key))],
            "success": [success],
            "failure": [{"request_range": {"key": b64(key)}}],
        }, write=True)

    def _guard(self, expected: int | None) -> dict:
        if expected is None:  # unconditional, but the key must exist
            return {"target": "VERSION", "result": "GREATER", "version": "0"}
        return {"target": "MOD", "result": "EQUAL", "mod_revision": str(expected)}

    def _failed(self, key: str, r: dict, expected: int | None) -> StoreError:
        rng = (r.get("responses") or [{}])[0].get("response_range", {})
        kvs = rng.get("kvs") or []
        if not kvs:
            return KeyNotFound(key)
        return Conflict(f"{key}: modified at revision {_kv(kvs[0]).mod_revision}, expected {expected}")

    def create(self, key: str, value: bytes) -> KeyValue:
        value = bytes(value)
        r = self._txn(key, {"target": "CREATE", "result": "EQUAL", "create_revision": "0"},
                      {"request_put": {"key": b64(key), "value": b64(value)}})
        if not r.get("succeeded"):
            raise KeyExists(key)
        rev = int(r["header"]["revision"])
        return KeyValue(key, value, rev, rev, 1)

    def update(self, key: str, value: bytes, expected_mod_revision: int | None = None) -> KeyValue:
        value = bytes(value)
        r = self._txn(key, self._guard(expected_mod_revision),
                      {"request_put": {"key": b64(key), "value": b64(value), "prev_kv": True}})
        if not r.get("succeeded"):
            raise self._failed(key, r, expected_mod_revision)
        rev = int(r["header"]["revision"])
        prev = _kv(r["responses"][0]["response_put"]["prev_kv"])
        return KeyValue(key, value, prev.create_revision, rev, prev.version + 1)

    def delete(self, key: str, expected_mod_revision: int | None = None) -> KeyValue:
        r = self._txn(key, self._guard(expected_mod_revision),
                      {"request_delete_range": {"key": b64(key), "prev_kv": True}})
        if not r.get("succeeded"):
            raise self._failed(key, r, expected_mod_revision)
        return _kv(r["responses"][0]["response_delete_range"]["prev_kvs"][0])

    # ---- watch and compaction ----------------------------------------------------------
    def watch(self, prefix: str, start_revision: int, callback: Callable[[list[Event]], None],
              on_error: Callable[[StoreError], None] | None = None) -> Watch:
        w = _EtcdWatch(self, prefix, start_revision, callback, on_error)
        with self._lock:
            self._watches.append(w)
        return w

    def compact(self, revision: int) -> None:
        try:
            self.gateway.call("/v3/kv/compaction", {"revision": str(revision), "physical": True}, write=True)
        except Compacted:
            pass  # already compacted at or above this revision
        self._floor = max(self._floor, revision)

    def close(self) -> None:
        with self._lock:
            watches, self._watches = self._watches, []
        for w in watches:
            w.cancel()
        self.gateway.close()


class _EtcdWatch(Watch):
    """One etcd watch stream, reopened on another member (from the next revision) when it breaks."""

    def __init__(self, store: EtcdStore, prefix: str, start_revision: int,
                 callback: Callable[[list[Event]], None], on_error: Callable[[StoreError], None] | None) -> None:
        self.store = store
        self.prefix = prefix
        raw = prefix.encode()
        self._request = {"key": b64(raw or b"\0"), "range_end": b64(_prefix_end(raw)), "prev_kv": True}
        self._stream: WatchStream | None = None
        self._cancelled = threading.Event()
        stream, first = self._open(start_revision if start_revision > 0 else 0)
        created_rev = int(first["result"]["header"]["revision"])
        self.next_revision = start_revision if start_revision > 0 else created_rev + 1
        self.queue = QueueWatch(prefix, self.next_revision, callback, on_error, name="etcd-watch")
        self._stream = stream
        self._thread = threading.Thread(target=self._run, name="labkit-etcd-watch", daemon=True)
        self._thread.start()

    def _open(self, start: int) -> tuple[WatchStream, dict]:
        req = dict(self._request)
        if start > 0:
            req["start_revision"] = str(start)
            # etcd first confirms a compacted watch and cancels it a moment later; a read at the
            # start revision tells us now, so watch() can raise Compacted like the other backends
            try:
                self.store.gateway.call("/v3/kv/range", {"key": self._request["key"], "revision": str(start),
                                                         "count_only": True})
            except FutureRevision:
                pass
        stream = self.store.gateway.open_watch(req)
        first = next(iter(stream), None)
        if first is None or "result" not in first:
            stream.dispose()
            raise Unavailable(f"etcd closed the watch stream at once: {first}")
        res = first["result"]
        if res.get("canceled"):
            stream.dispose()
            floor = int(res.get("compact_revision", 0))
            if floor:
                self.store._floor = max(self.store._floor, floor)
                raise Compacted(f"cannot watch from revision {start}: compacted up to {floor}")
            raise Unavailable(f"etcd refused the watch: {res.get('cancel_reason', res)}")
        return stream, first

    def _run(self) -> None:
        attempt = 0
        while not self._cancelled.is_set():
            stream = self._stream
            try:
                if stream is None:
                    stream, _ = self._open(self.next_revision)
                    if self._cancelled.is_set():
                        stream.dispose()
                        return
                    self._stream = stream
                    attempt = 0
                for msg in stream:
                    res = msg.get("result") or {}
                    if res.get("canceled"):
                        floor = int(res.get("compact_revision", 0))
                        if floor:
                            raise Compacted(f"watch fell behind compaction at {floor}")
                        break
                    events = [_event(e) for e in res.get("events") or []]
                    if events:
                        self.queue.push(events)
                        self.next_revision = events[-1].revision + 1
            except Compacted as exc:
                if stream is not None:
                    stream.dispose()
                if not self._cancelled.is_set():
                    self.queue.fail(exc)
                    self._cancelled.set()
                return
            except Exception as exc:  # noqa: BLE001 - any break of the stream: reopen it
                if self._cancelled.is_set():
                    if stream is not None:
                        stream.dispose()
                    return
                log.debug("etcd watch stream broke (%s); reopening from %d", exc, self.next_revision)
            if stream is not None:
                stream.dispose()
            self._stream = None
            if self._cancelled.is_set():
                return
            backoff(attempt)
            attempt += 1

    def cancel(self) -> None:
        if self._cancelled.is_set() and self.queue.cancelled:
            return
        self._cancelled.set()
        stream = self._stream
        if stream is not None:
            stream.close()
        self.queue.cancel()
        with self.store._lock:
            if self in self.store._watches:
                self.store._watches.remove(self)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
