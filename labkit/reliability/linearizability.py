"""Is a recorded history linearizable? A Wing–Gong search with Lowe's memoisation, per object.

No maintained checker of this kind is published for Python (porcupine is Go, Knossos is Clojure),
so this is a small one in the same shape as porcupine's: the operations' call and return events in
time order on a doubly linked list; repeatedly pick a call whose operation the model accepts,
"lift" it and its return out of the list, and backtrack when a return is reached before its call
was linearized. A cache of (set of linearized operations, model state) prunes every path already
tried, which is what makes the search practical (Lowe, 2017).

Objects are independent (P-compositionality, Horn and Kroening 2015): the history is split per
key and each part searched alone, so the search grows with one object's concurrency, not the
whole run's. :func:`check_revision_order` adds the one cross-object property Kubernetes promises:
resourceVersions of acknowledged writes follow real time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from labkit.reliability import models
from labkit.reliability.history import History, Operation


@dataclass
class KeyResult:
    key: str
    ok: bool
    operations: int
    unknown: bool = False  # the search ran out of its step budget
    linearized: int = 0  # the most operations any legal order covered
    stuck: list[Operation] = field(default_factory=list)  # operations that could come next there, none fitting

    def explain(self) -> str:
        if self.ok:
            return f"{self.key}: linearizable ({self.operations} operations)"
        if self.unknown:
            return f"{self.key}: unknown, the search ran out of steps ({self.operations} operations)"
        lines = [f"{self.key}: NOT linearizable: the longest legal order places {self.linearized} of "
                 f"{self.operations} operations; none of these fits next:"]
        lines += ["    " + op.describe() for op in self.stuck[:6]]
        return "\n".join(lines)


@dataclass
class Result:
    keys: list[KeyResult]
    operations: int

    @property
    def ok(self) -> bool:
        return all(k.ok for k in self.keys)

    @property
    def violations(self) -> list[KeyResult]:
        return [k for k in self.keys if not k.ok and not k.unknown]

    def explain(self) -> str:
        bad = [k for k in self.keys if not k.ok]
        if not bad:
            return f"linearizable: {self.operations} operations on {len(self.keys)} objects"
        return "\n".join(k.explain() for k in bad)


class _Entry:
    __slots__ = ("op", "index", "is_call", "time", "match", "prev", "next")

    def __init__(self, op: Operation | None, index: int, is_call: bool, time: float):
        self.op, self.index, self.is_call, self.time = op, index, is_call, time
        self.match: _Entry | None = None
        self.prev: _Entry | None = None
        self.next: _Entry | None = None


def _entries(ops: list[Operation]) -> _Entry:
    events = []
    for i, op in enumerate(ops):
        call, ret = _Entry(op, i, True, op.call), _Entry(op, i, False, op.ret)
        call.match = ret
        events += [call, ret]
    # at equal times a call sorts before a return: such operations count as concurrent
    events.sort(key=lambda e: (e.time, 0 if e.is_call else 1))
    head = _Entry(None, -1, False, float("-inf"))
    prev = head
    for e in events:
        prev.next, e.prev = e, prev
        prev = e
    return head


def _lift(call: _Entry) -> None:
    call.prev.next = call.next  # type: ignore[union-attr]
    if call.next is not None:
        call.next.prev = call.prev
    ret = call.match
    assert ret is not None
    ret.prev.next = ret.next  # type: ignore[union-attr]
    if ret.next is not None:
        ret.next.prev = ret.prev


def _unlift(call: _Entry) -> None:
    ret = call.match
    assert ret is not None
    ret.prev.next = ret  # type: ignore[union-attr]
    if ret.next is not None:
        ret.next.prev = ret
    call.prev.next = call  # type: ignore[union-attr]
    if call.next is not None:
        call.next.prev = call


def check_operations(key: str, ops: list[Operation], max_steps: int = 2_000_000) -> KeyResult:
    """Search for a legal sequential order of one object's operations that respects real time."""
    ops = [op for op in ops if not (op.kind == "get" and op.status != "ok")]  # failed reads saw nothing
    head = _entries(ops)
    state = models.initial()
    linearized = 0  # bit i set: operation i is placed
    cache: set[tuple[int, frozenset]] = set()
    calls: list[tuple[_Entry, frozenset]] = []
    best, stuck_at = 0, 0
    entry = head.next
    steps = 0
    while head.next is not None:
        steps += 1
        if steps > max_steps:
            return KeyResult(key, False, len(ops), unknown=True, linearized=best)
        assert entry is not None
        if entry.is_call:
            new_state = models.step(state, entry.op)  # type: ignore[arg-type]
            placed = linearized | (1 << entry.index)
            if new_state and (placed, new_state) not in cache:
                cache.add((placed, new_state))
                calls.append((entry, state))
                state, linearized = new_state, placed
                _lift(entry)
                if len(calls) > best:
                    best, stuck_at = len(calls), linearized
                entry = head.next
            else:
                entry = entry.next
        else:
            if not calls:
                return KeyResult(key, False, len(ops), linearized=best, stuck=_candidates(ops, stuck_at))
            top, state = calls.pop()
            linearized &= ~(1 << top.index)
            _unlift(top)
            entry = top.next
    return KeyResult(key, True, len(ops), linearized=len(ops))


def _candidates(ops: list[Operation], placed: int) -> list[Operation]:
    """The operations that could have come next after the longest legal prefix: the unplaced ones
    called before the earliest unplaced return."""
    rest = [op for i, op in enumerate(ops) if not placed >> i & 1]
    if not rest:
        return []
    first_ret = min(op.ret for op in rest)
    return sorted((op for op in rest if op.call <= first_ret), key=lambda op: op.call)


def check_history(history: History | list[Operation], max_steps: int = 2_000_000) -> Result:
    """Check every object's sub-history on its own (each object is independent of the others)."""
    ops = history.ops if isinstance(history, History) else history
    parts: dict[str, list[Operation]] = {}
    for op in ops:
        parts.setdefault(op.key, []).append(op)
    keys = [check_operations(k, v, max_steps) for k, v in sorted(parts.items())]
    return Result(keys, sum(k.operations for k in keys))


def check_revision_order(history: History | list[Operation]) -> list[tuple[Operation, Operation]]:
    """Pairs of acknowledged writes whose resourceVersions contradict real time.

    If write A returned before write B was called, A's resourceVersion must be smaller, whichever
    objects they wrote: resourceVersions come from one revision counter that a list or a watch
    relies on. Each returned pair is (earlier write, later write with a smaller or equal version).
    """
    ops = history.ops if isinstance(history, History) else history
    writes = [op for op in ops if op.is_write and op.status == "ok" and op.out_rv is not None]
    by_ret = sorted(writes, key=lambda op: op.ret)
    bad = []
    i, top = 0, None  # top: the write with the largest version among those returned so far
    for b in sorted(writes, key=lambda op: op.call):
        while i < len(by_ret) and by_ret[i].ret < b.call:
            if top is None or by_ret[i].out_rv > top.out_rv:  # type: ignore[operator]
                top = by_ret[i]
            i += 1
        if top is not None and top.out_rv >= b.out_rv:  # type: ignore[operator]
            bad.append((top, b))
    return bad
