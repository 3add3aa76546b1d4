"""One operation as a client saw it, and a thread-safe recorder of many.

Each operation has a call time and a return time (``time.monotonic()``, one clock for every
client thread of the recording process) and an outcome:

* ``ok``: the server acknowledged it, with a result;
* ``fail``: the server said it did not happen (404, 409) or it never left the client (refused);
* ``info``: nobody knows (a timeout, a reset connection, a 5xx): it may have taken effect, now or
  later. As in Jepsen and Knossos its return time is infinity, so the checker may place it anywhere
  after its call, or treat it as never applied.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

INFINITY = math.inf
KINDS = ("create", "get", "cas", "delete")


@dataclass
class Operation:
    """What one client asked of one object, and what it learned."""

    id: int
    process: int
    key: str
    kind: str  # create | get | cas | delete
    value: str | None = None  # the value a create or cas writes
    expected_rv: int | None = None  # the resourceVersion a cas names
    call: float = 0.0
    ret: float = INFINITY
    status: str = "info"  # ok | fail | info
    out_value: str | None = None  # what a get read (None: absent)
    out_rv: int | None = None  # the resourceVersion a get read or a write produced
    error: str = ""  # why it failed or is unknown (HTTP code, reason, exception)

    @property
    def is_write(self) -> bool:
        return self.kind != "get"

    def describe(self) -> str:
        """One line a person can read in a report."""
        args = {"create": f"create {self.value}", "get": "get", "cas": f"cas rv={self.expected_rv} -> {self.value}",
                "delete": "delete"}[self.kind]
        if self.status == "ok":
            out = (f"{self.out_value}@{self.out_rv}" if self.out_value is not None else "absent") \
                if self.kind == "get" else (f"ok rv={self.out_rv}" if self.out_rv is not None else "ok")
        else:
            out = f"{self.status} {self.error}".strip()
        ret = "inf" if self.ret == INFINITY else f"{self.ret:.3f}"
        return f"#{self.id} p{self.process} {self.key}: {args} -> {out} [{self.call:.3f}, {ret}]"


@dataclass
class History:
    """Every operation of one run, recorded by many threads at once."""

    ops: list[Operation] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _ids: Iterator[int] = field(default_factory=itertools.count, repr=False)

    def add(self, op: Operation) -> Operation:
        with self._lock:
            self.ops.append(op)
        return op

    @contextmanager
    def invoke(self, process: int, key: str, kind: str, value: str | None = None,
               expected_rv: int | None = None) -> Iterator[Operation]:
        """Record one operation: its call time now, its return time when the block ends.

        The block sets ``status`` to ok or fail; a block left with the status still ``info`` (or
        by an exception) is indeterminate and keeps an infinite return time.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown operation {kind!r}; use one of {KINDS}")
        with self._lock:
            op = Operation(next(self._ids), process, key, kind, value, expected_rv, call=time.monotonic())
        try:
            yield op
        except BaseException as exc:
            op.status, op.error = "info", op.error or type(exc).__name__
            raise
        finally:
            if op.status != "info":
                op.ret = time.monotonic()
            self.add(op)

    def by_key(self) -> dict[str, list[Operation]]:
        """The history cut into one sub-history per object (each object is independent)."""
        out: dict[str, list[Operation]] = {}
        for op in self.ops:
            out.setdefault(op.key, []).append(op)
        return out

    def counts(self) -> dict[str, int]:
        c = {"ok": 0, "fail": 0, "info": 0}
        for op in self.ops:
            c[op.status] += 1
        return c
