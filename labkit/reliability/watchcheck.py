"""Watch guarantees, checked apart from linearizability.

A watch resumed from a resourceVersion it has seen must deliver every later change exactly once,
in revision order; when that revision has been compacted the server must say so (an ERROR event
carrying a Status with code 410, reason Expired) and never skip ahead silently. A
:class:`WatchRecorder` follows one namespace's ConfigMaps through apiserver crashes and pauses,
resuming from the last revision it saw, and :func:`check_watch` compares what it saw with what the
clients' writes were acknowledged with.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from labkit.reliability.history import History


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED
    name: str
    value: str | None
    rv: int


class Expired(Exception):
    """The server answered the watch with 410 Expired."""

    def __init__(self, status: dict):
        super().__init__(status.get("message", "410 Expired"))
        self.status = status


def watch_stream(base: str, path: str, rv: int, read_timeout: float = 3.0,
                 opened: Callable[[http.client.HTTPConnection], None] | None = None) -> Iterator[dict]:
    """Raw watch events from ``rv`` on (bookmarks included); raises Expired on a 410 ERROR event."""
    host, _, port = base.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=read_timeout)
    if opened is not None:
        opened(conn)
    try:
        conn.request("GET", f"{path}?watch=1&allowWatchBookmarks=true&resourceVersion={rv}")
        resp = conn.getresponse()
        if resp.status == 410:
            raise Expired(json.loads(resp.read() or b"{}"))
        if resp.status != 200:
            raise OSError(f"watch answered {resp.status}")
        while True:
            line = resp.readline()
            if not line:
                return
            ev = json.loads(line)
            if ev.get("type") == "ERROR":
                status = ev.get("object") or {}
                if status.get("code") == 410:
                    raise Expired(status)
                raise OSError(f"watch ERROR event: {status}")
            yield ev
    finally:
        conn.close()


def to_event(raw: dict) -> WatchEvent:
    obj = raw["object"]
    return WatchEvent(raw["type"], obj["metadata"]["name"], (obj.get("data") or {}).get("v"),
                      int(obj["metadata"]["resourceVersion"]))


class WatchRecorder(threading.Thread):
    """Follows one collection's watch until stopped, resuming from the last revision it saw."""

    def __init__(self, base: str, path: str, start_rv: int):
        super().__init__(daemon=True, name="watch-recorder")
        self.base, self.path = base, path
        self.last_rv = start_rv
        self.events: list[WatchEvent] = []
        self.gaps: list[tuple[int, int]] = []  # (last seen, relisted at): revisions the server said were gone
        self.resumes = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                for raw in watch_stream(self.base, self.path, self.last_rv, opened=self._opened):
                    if raw.get("type") == "BOOKMARK":
                        self.last_rv = max(self.last_rv, int(raw["object"]["metadata"]["resourceVersion"]))
                    else:
                        ev = to_event(raw)
                        self.events.append(ev)
                        self.last_rv = max(self.last_rv, ev.rv)
                    if self._halt.is_set():
                        return
            except Expired:
                self._relist()
            except (OSError, http.client.HTTPException, ValueError):
                self._halt.wait(0.1)  # the server is away (crashed, paused): resume when it is back
            self.resumes += 1

    def _relist(self) -> None:
        """After 410: list again and go on from the list's revision, noting the gap the server declared."""
        try:
            conn = http.client.HTTPConnection(*self.base.removeprefix("http://").split(":"), timeout=3)
            conn.request("GET", self.path)
            rv = int(json.loads(conn.getresponse().read())["metadata"]["resourceVersion"])
            conn.close()
        except (OSError, http.client.HTTPException, ValueError, KeyError):
            return
        self.gaps.append((self.last_rv, rv))
        self.last_rv = rv

    def wait_for(self, rv: int, timeout: float) -> bool:
        """Wait until the watch has delivered everything up to ``rv``."""
        deadline = time.monotonic() + timeout
        while self.last_rv < rv and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.last_rv >= rv

    def _opened(self, conn: http.client.HTTPConnection) -> None:
        self._conn = conn

    def stop(self) -> None:
        self._halt.set()
        conn = getattr(self, "_conn", None)
        if conn is not None and conn.sock is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)  # wake the reader now, not at its read timeout
            except OSError:
                pass
        self.join(5)


@dataclass
class WatchReport:
    events: int
    acknowledged: int
    missing: list[str] = field(default_factory=list)  # acknowledged writes the watch never delivered
    duplicates: list[str] = field(default_factory=list)
    out_of_order: list[str] = field(default_factory=list)
    phantoms: list[str] = field(default_factory=list)  # events no write could have caused
    deletes: list[str] = field(default_factory=list)  # DELETED counts no delete outcome explains
    in_gaps: int = 0  # acknowledged writes inside a range the server declared expired (410)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicates or self.out_of_order or self.phantoms or self.deletes)

    @property
    def problems(self) -> list[str]:
        return self.missing + self.duplicates + self.out_of_order + self.phantoms + self.deletes

    def explain(self) -> str:
        if self.ok:
            return (f"watch: {self.events} events, every one of {self.acknowledged} acknowledged writes seen once "
                    f"in order ({self.in_gaps} inside ranges answered with 410)")
        return "watch: " + "; ".join(self.problems[:8])


def check_watch(history: History, events: list[WatchEvent], gaps: list[tuple[int, int]], upto: int) -> WatchReport:
    """Compare a watch's events with the history's writes, once the watch has reached ``upto``, a
    revision written after every client stopped (so every acknowledged write lies below it)."""
    keys = {op.key for op in history.ops}
    newest = max((op.out_rv for op in history.ops if op.is_write and op.status == "ok" and op.out_rv), default=0)
    if newest > upto:  # the store started again from an earlier revision: its history is gone
        report = WatchReport(len(events), 0)
        report.missing.append(f"the store's revision went back: writes were acknowledged up to {newest}, "
                              f"a write after the faults got {upto}; everything in between is lost")
        return report
    events = [ev for ev in events if ev.name in keys and ev.rv <= upto]
    writes = [op for op in history.ops if op.kind in ("create", "cas")]
    acked = [op for op in writes if op.status == "ok" and op.out_rv is not None and op.out_rv <= upto]
    report = WatchReport(len(events), len(acked))
    seen_rv: dict[int, WatchEvent] = {}
    last = 0
    for ev in events:
        if ev.rv in seen_rv:
            report.duplicates.append(f"revision {ev.rv} delivered twice")
        elif ev.rv < last:
            report.out_of_order.append(f"revision {ev.rv} after {last}")
        seen_rv[ev.rv] = ev
        last = max(last, ev.rv)

    def in_gap(rv: int) -> bool:
        return any(a < rv <= b for a, b in gaps)

    for op in acked:
        ev = seen_rv.get(op.out_rv)  # type: ignore[arg-type]
        if ev is None:
            if in_gap(op.out_rv):  # type: ignore[arg-type]
                report.in_gaps += 1
            else:
                report.missing.append(f"acknowledged {op.describe()} never seen")
        elif ev.name != op.key or ev.value != op.value or ev.type == "DELETED":
            report.missing.append(f"revision {op.out_rv} was acknowledged for {op.key}={op.value} but the watch "
                                  f"showed {ev.type} {ev.name}={ev.value}")
    written = {(op.key, op.value): op for op in writes if op.status != "fail"}
    for ev in events:
        if ev.type == "DELETED":
            continue
        op = written.get((ev.name, ev.value))
        if op is None or (op.status == "ok" and op.out_rv != ev.rv):
            report.phantoms.append(f"{ev.type} {ev.name}={ev.value} at {ev.rv}: no write explains it")
    for key in keys:
        dels = [op for op in history.ops if op.key == key and op.kind == "delete"]
        ok = sum(op.status == "ok" for op in dels)
        maybe = sum(op.status == "info" for op in dels)
        seen = sum(ev.type == "DELETED" and ev.name == key for ev in events)
        if not gaps and not ok <= seen <= ok + maybe:
            report.deletes.append(f"{key}: {seen} DELETED events for {ok} acknowledged deletes (+{maybe} unknown)")
    return report
