"""Clients that drive one object store through the apiserver's HTTP API and record what they saw.

Plain HTTP (``http.client``), one new connection per request, so a killed or paused server shows
up as what it is to a client: a refused connection (nothing was sent: the operation failed), or a
timeout or reset after the request left (nobody knows: indeterminate). The objects are ConfigMaps
whose ``data.v`` holds a value no other write uses, so a read names the write it saw.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from labkit.reliability.history import History, Operation


class Unknown(Exception):
    """The request may have reached the server: its outcome is unknown."""


class Refused(Exception):
    """The request never reached the server."""


@dataclass
class Reply:
    code: int
    body: dict

    @property
    def reason(self) -> str:
        return str(self.body.get("reason") or "")


def request(base: str, method: str, path: str, body: Any = None, timeout: float = 2.0) -> Reply:
    """One HTTP request to the apiserver at ``base`` (``http://127.0.0.1:PORT``)."""
    host, _, port = base.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    data = json.dumps(body).encode() if body is not None else None
    try:
        try:
            conn.connect()
        except ConnectionRefusedError as exc:
            raise Refused(str(exc)) from exc
        except OSError as exc:  # a paused server: the kernel queues the connection, nobody accepts it
            raise Unknown(f"connect: {exc}") from exc
        try:
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
            resp = conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise Unknown(f"{type(exc).__name__}: {exc}") from exc
    finally:
        conn.close()
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        parsed = {"message": raw[:200].decode(errors="replace")}
    return Reply(resp.status, parsed if isinstance(parsed, dict) else {})


def configmap(namespace: str, name: str, value: str, rv: int | None = None) -> dict:
    meta: dict = {"name": name, "namespace": namespace}
    if rv is not None:
        meta["resourceVersion"] = str(rv)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"v": value}}


class ObjectClient:
    """create / get / compare-and-swap / delete of ConfigMaps, each recorded in a :class:`History`."""

    def __init__(self, base: str, namespace: str, history: History, process: int, timeout: float = 1.5):
        self.base, self.ns, self.history, self.process, self.timeout = base, namespace, history, process, timeout
        self.writes = 0

    def _path(self, name: str | None = None) -> str:
        p = f"/api/v1/namespaces/{self.ns}/configmaps"
        return f"{p}/{name}" if name else p

    def _value(self) -> str:
        self.writes += 1
        return f"p{self.process}-{self.writes}"

    def _send(self, op: Operation, method: str, path: str, body: Any = None) -> Reply | None:
        try:
            reply = request(self.base, method, path, body, self.timeout)
        except Refused as exc:
            op.status, op.error = "fail", f"refused: {exc}"
            return None
        except Unknown as exc:
            op.error = str(exc)
            return None
        if reply.code >= 500 or reply.code == 429:  # the server may have written before it failed
            op.error = f"{reply.code} {reply.reason}".strip()
            return None
        if reply.code >= 300:
            op.status, op.error = "fail", f"{reply.code} {reply.reason}".strip()
            return None
        op.status = "ok"
        return reply

    def get(self, name: str) -> Operation:
        with self.history.invoke(self.process, name, "get") as op:
            try:
                reply = request(self.base, "GET", self._path(name), None, self.timeout)
            except (Refused, Unknown) as exc:
                op.status, op.error = "fail", str(exc)  # a read that saw nothing changes nothing
                return op
            if reply.code == 404:
                op.status = "ok"
            elif reply.code == 200:
                op.status = "ok"
                op.out_value = (reply.body.get("data") or {}).get("v")
                op.out_rv = int(reply.body["metadata"]["resourceVersion"])
            else:
                op.status, op.error = "fail", f"{reply.code} {reply.reason}"
        return op

    def create(self, name: str) -> Operation:
        value = self._value()
        with self.history.invoke(self.process, name, "create", value=value) as op:
            reply = self._send(op, "POST", self._path(), configmap(self.ns, name, value))
            if reply is not None:
                op.out_rv = int(reply.body["metadata"]["resourceVersion"])
        return op

    def cas(self, name: str, expected_rv: int) -> Operation:
        """PUT with the resourceVersion read before: applied only if nobody wrote in between."""
        value = self._value()
        with self.history.invoke(self.process, name, "cas", value=value, expected_rv=expected_rv) as op:
            reply = self._send(op, "PUT", self._path(name), configmap(self.ns, name, value, expected_rv))
            if reply is not None:
                op.out_rv = int(reply.body["metadata"]["resourceVersion"])
        return op

    def delete(self, name: str) -> Operation:
        with self.history.invoke(self.process, name, "delete") as op:
            self._send(op, "DELETE", self._path(name))
        return op


def run_client(client: ObjectClient, keys: list[str], stop: threading.Event, seed: int) -> None:
    """Read-modify-write loops on a few shared objects until ``stop``: mostly get then cas, sometimes
    create or delete, so every kind of operation meets every other."""
    rnd = random.Random(seed)
    while not stop.is_set():
        key = rnd.choice(keys)
        r = rnd.random()
        if r < 0.08:
            client.delete(key)
            continue
        read = client.get(key)
        if read.status != "ok":
            stop.wait(0.05)  # the server is away: do not spin
            continue
        if read.out_value is None:
            client.create(key)
        elif r < 0.75:
            client.cas(key, read.out_rv)  # type: ignore[arg-type]


def clients(base: str, namespace: str, history: History, n: int, timeout: float = 1.5) -> Iterator[ObjectClient]:
    for p in range(n):
        yield ObjectClient(base, namespace, history, p, timeout)
