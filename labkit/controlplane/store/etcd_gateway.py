"""A small client for etcd v3's JSON gateway (``/v3/kv/...``, ``/v3/watch``), with member failover.

etcd speaks gRPC; every etcd since 3.3 also serves the same calls as JSON over HTTP, with keys and
values in base64 and 64-bit numbers as strings. That is all labkit needs, and it keeps the store
free of generated gRPC code. A cluster has several members: a request goes to the member that
answered last, and moves on to the next one when a member does not answer.

Why its own client beside the ``etcd3gw`` library: lab 11 (``labs/11-etcd.md``) explains these very
calls (``/v3/kv/range``, ``/v3/kv/txn``, ``/v3/watch``) and kills members of a three-member cluster
while writes go on. ``etcd3gw`` talks to one host per client, with no failover between members and
no waiting for a new leader, so the lab's step would fail with it.
"""

from __future__ import annotations

import base64
import http.client
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

from labkit.controlplane.store.base import Compacted, FutureRevision, StoreError, Unavailable


def b64(data: str | bytes) -> str:
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode("ascii")


def unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


class GatewayError(StoreError):
    """etcd answered with an error we do not map to a more specific StoreError."""


def _raise_for(body: bytes, status: int, endpoint: str) -> None:
    try:
        err = json.loads(body)
        message = err.get("message") or err.get("error") or body.decode(errors="replace")
    except ValueError:
        message = body.decode(errors="replace")
    if "required revision has been compacted" in message:
        raise Compacted(message)
    if "future revision" in message:
        raise FutureRevision(message)
    if "request is too large" in message or "message larger than max" in message:
        raise GatewayError(f"etcd at {endpoint} refused a value that large ({message}); etcd's limit is "
                           "--max-request-bytes, 1.5 MiB by default")
    if any(s in message for s in ("timed out", "no leader", "leader changed", "not capable",
                                  "too many requests", "stopped")):
        raise _MemberUnavailable(f"{endpoint}: {message}")
    raise GatewayError(f"etcd at {endpoint} answered {status}: {message}")


class _MemberUnavailable(Exception):
    """This member cannot serve the request now; another one might."""


class Gateway:
    """JSON-over-HTTP calls to an etcd cluster; thread-safe, one keep-alive connection per thread."""

    def __init__(self, endpoints: list[str], timeout: float = 3.0, failover_wait: float = 3.0) -> None:
        if not endpoints:
            raise ValueError("no etcd endpoints given")
        self.endpoints: list[tuple[str, str, int]] = []
        for url in endpoints:
            if "://" not in url:
                url = "http://" + url
            parts = urlsplit(url)
            if parts.scheme != "http" or not parts.hostname:
                raise ValueError(f"etcd endpoint {url!r}: use http://HOST:PORT (TLS is not supported)")
            self.endpoints.append((url.rstrip("/"), parts.hostname, parts.port or 2379))
        self.timeout = timeout
        self.failover_wait = failover_wait  # how long to wait for a new leader before giving up
        self._preferred = 0
        self._ids: dict[str, str] = {}
        self._located = False
        self._local = threading.local()

    # ---- plumbing ----------------------------------------------------------------------
    def _conn(self, i: int) -> tuple[http.client.HTTPConnection, bool]:
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        conn = conns.get(i)
        if conn is not None:
            return conn, True
        _, host, port = self.endpoints[i]
        conn = conns[i] = http.client.HTTPConnection(host, port, timeout=self.timeout)
        return conn, False

    def _drop(self, i: int) -> None:
        conn = getattr(self._local, "conns", {}).pop(i, None)
        if conn is not None:
            conn.close()

    def _once(self, i: int, path: str, payload: bytes, short: bool = False, write: bool = False) -> dict:
        for attempt in range(2):
            conn, reused = self._conn(i)
            if reused and _closed_by_peer(conn):  # the member restarted since: never send into a dead socket
                self._drop(i)
                conn, reused = self._conn(i)
            conn.timeout = 0.5 if short else self.timeout
            if conn.sock is not None:
                conn.sock.settimeout(conn.timeout)
            try:
                # "hasleader": a member that knows no leader says so at once instead of waiting
                conn.request("POST", path, payload, {"Content-Type": "application/json",
                                                     "Grpc-Metadata-Hasleader": "true"})
                resp = conn.getresponse()
                body = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._drop(i)
                if reused and attempt == 0 and not write:
                    continue  # the member closed an idle keep-alive connection: reconnect once
                raise  # a write sent may have been applied: never send it twice (see call)
            except OSError:
                self._drop(i)
                raise
            if resp.status != 200:
                _raise_for(body, resp.status, self.endpoints[i][0])
            return json.loads(body)
        raise ConnectionError("unreachable")

    def _member_urls(self, i: int) -> dict[str, str]:
        """Member ID -> client URL, as member ``i`` knows the cluster."""
        r = self._once(i, "/v3/cluster/member/list", b"{}", short=True)
        return {m["ID"]: (m.get("clientURLs") or [""])[0].rstrip("/") for m in r.get("members", [])}

    def _await_leader(self, down: set[int], deadline: float) -> int | None:
        """Index of a live member to send requests to, once the cluster has a live leader.

        After the leader dies the others keep forwarding writes to it until they notice (one
        election timeout), and a write forwarded there is lost: etcd answers it only after its
        own ~6 s request timeout. So before failing over we wait for a leader that is not one
        of the members that just refused us, and talk to that leader directly.
        """
        n = len(self.endpoints)
        index = {url: i for i, (url, _, _) in enumerate(self.endpoints)}
        while True:
            for j in range(n):
                if j in down:
                    continue
                try:
                    leader = self._once(j, "/v3/maintenance/status", b"{}", short=True).get("leader", "0")
                    if leader in ("", "0"):
                        continue
                    ids = self._ids if leader in self._ids else self._member_urls(j)
                    self._ids = ids
                except (OSError, http.client.HTTPException, ValueError, StoreError, _MemberUnavailable):
                    continue
                li = index.get(ids.get(leader, ""))
                if li is None:
                    return j  # the leader is not in our list: any live member forwards to it
                if li not in down:
                    return li
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    def call(self, path: str, body: dict, write: bool = False) -> dict:
        """POST ``body`` to ``path`` on the member we follow (the leader, once one failed over).

        Raises Unavailable, saying what each member did, when no member can serve it in time.
        """
        payload = json.dumps(body).encode()
        problems: dict[int, str] = {}
        down: set[int] = set()
        deadline = time.monotonic() + self.failover_wait
        if not self._located and len(self.endpoints) > 1:
            # talk to the leader from the start: a follower would forward our writes to it anyway,
            # and would keep forwarding them to a leader that just died
            self._located = True
            found = self._await_leader(set(), time.monotonic())
            if found is not None:
                self._preferred = found
        i = self._preferred
        while True:
            url = self.endpoints[i][0]
            try:
                result = self._once(i, path, payload, write=write)
                self._preferred = i
                return result
            except ConnectionRefusedError:
                problems[i] = f"{url} refused the connection (not running)"
                down.add(i)
            except TimeoutError as exc:
                self._drop(i)
                problems[i] = f"{url} did not answer within {self.timeout:g} s"
                if write:  # it may still commit later: never send a write twice
                    raise Unavailable(self._explain(self._probe_rest(problems))
                                      + " The write may or may not have been applied.") from exc
                down.add(i)
            except _MemberUnavailable as exc:
                problems[i] = str(exc)
                # only "no leader", "not capable" and "too many requests" refuse a write before it is
                # proposed; after "timed out", "leader changed" or "stopped" it may still commit
                if write and any(s in str(exc) for s in ("timed out", "leader changed", "stopped")):
                    raise Unavailable(self._explain(self._probe_rest(problems))
                                      + " The write may or may not have been applied.") from exc
            except (OSError, http.client.HTTPException) as exc:
                problems[i] = f"{url}: {exc.__class__.__name__}: {exc}"
                down.add(i)
                # once sent, a write whose connection broke may have been applied: sending it again
                # could turn our own success into a Conflict (found by labkit.reliability's histories)
                if write:
                    raise Unavailable(self._explain(self._probe_rest(problems))
                                      + " The write may or may not have been applied.") from exc
            j = self._await_leader(down, deadline)
            if j is None:
                raise Unavailable(self._explain(self._probe_rest(problems)))
            i = j

    def _probe_rest(self, problems: dict[int, str]) -> dict[int, str]:
        """Complete an error report with the members this request never reached."""
        for k in range(len(self.endpoints)):
            if k not in problems:
                problems[k] = self._probe(k)
        return problems

    def _probe(self, i: int) -> str:
        url, host, port = self.endpoints[i]
        try:
            socket.create_connection((host, port), timeout=0.3).close()
        except OSError:
            return f"{url} refused the connection (not running)"
        return f"{url} is running"

    def _explain(self, problems: dict[int, str]) -> str:
        n = len(self.endpoints)
        alive = n - sum("refused" in p for p in problems.values())
        text = "etcd cannot serve this request: " + "; ".join(problems[k] for k in sorted(problems)) + "."
        if n > 1 and alive <= n // 2:
            text += (f" Only {alive} of {n} members are running and etcd needs {n // 2 + 1} for a quorum: "
                     "without one, nothing can be committed. Start the stopped members again.")
        return text

    # ---- watch stream ------------------------------------------------------------------
    def open_watch(self, create_request: dict) -> WatchStream:
        """Open a watch stream on the first member that accepts it."""
        problems: list[str] = []
        n = len(self.endpoints)
        for step in range(n):
            i = (self._preferred + step) % n
            url, host, port = self.endpoints[i]
            try:
                return WatchStream(host, port, create_request, self.timeout)
            except (OSError, http.client.HTTPException) as exc:
                problems.append(f"{url}: {exc}")
        raise Unavailable("cannot open an etcd watch: " + "; ".join(problems))

    def close(self) -> None:
        for conn in getattr(self._local, "conns", {}).values():
            conn.close()


class WatchStream:
    """One ``/v3/watch`` HTTP stream: newline-delimited JSON responses."""

    def __init__(self, host: str, port: int, create_request: dict, timeout: float) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)
        self.conn.request("POST", "/v3/watch", json.dumps({"create_request": create_request}).encode(),
                          {"Content-Type": "application/json"})
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            body = self.resp.read()
            self.conn.close()
            _raise_for(body, self.resp.status, f"http://{host}:{port}")
        self.conn.sock.settimeout(None)  # a quiet watch is not a dead one

    def __iter__(self) -> Iterator[dict]:
        while True:
            line = self.resp.readline()
            if not line:
                return
            line = line.strip()
            if line:
                yield json.loads(line)

    def close(self) -> None:
        """Break the stream; safe from another thread (the reader closes the connection itself)."""
        sock = self.conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def dispose(self) -> None:
        """Close the stream and its connection (only from the thread that reads it)."""
        self.close()
        self.conn.close()


def _closed_by_peer(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle keep-alive connection was closed by the member (readable at EOF, or reset)."""
    sock = conn.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)  # an idle HTTP connection has nothing to read unless the peer closed it


def backoff(attempt: int) -> None:
    time.sleep(min(0.05 * (2 ** attempt), 1.0))
