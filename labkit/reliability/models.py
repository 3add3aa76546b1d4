"""The sequential model of one object in a Kubernetes object store.

An object is absent, or present with a value and a resourceVersion. The store assigns
resourceVersions from one global revision counter, so per object the checker knows only that
each write's is larger than the last; an indeterminate write leaves the new resourceVersion
unknown until a later read reveals it.

A state is ``(present, value, rv, floor)``: ``rv`` is None while unknown and ``floor`` is the
largest resourceVersion the object is known to have had, which every later one must exceed. The
model is nondeterministic (an indeterminate write did or did not happen), so :func:`step` maps a
*set* of states to the set of states after the operation, as porcupine's power-set models do; an
empty set means the operation's result is impossible here.
"""

from __future__ import annotations

from labkit.reliability.history import Operation

State = tuple[bool, str | None, int | None, int]
ABSENT: State = (False, None, None, 0)


def _rv_matches(state: State, rv: int) -> bool:
    """Could the object's resourceVersion be ``rv``? (A state with an unknown one may be refined to it.)"""
    return state[2] == rv if state[2] is not None else rv > state[3]


def _step_one(s: State, op: Operation) -> list[State]:
    present, value, rv, floor = s
    known = rv if rv is not None else floor
    if op.kind == "get":
        if op.status != "ok":
            return [s]  # a failed read observed nothing
        if op.out_value is None:
            return [s] if not present else []
        if present and value == op.out_value and op.out_rv is not None and _rv_matches(s, op.out_rv):
            return [(True, value, op.out_rv, op.out_rv)]
        return []
    if op.kind == "create":
        if op.status == "ok":
            if present or op.out_rv is None or op.out_rv <= floor:
                return []
            return [(True, op.value, op.out_rv, op.out_rv)]
        if op.status == "fail":
            if op.error.startswith("409"):  # AlreadyExists
                return [s] if present else []
            return [s]  # refused, or rejected for another reason: nothing happened, nothing learned
        return [s] if present else [s, (True, op.value, None, floor)]
    if op.kind == "cas":
        exp = op.expected_rv
        assert exp is not None, "a compare-and-swap names the resourceVersion it expects"
        if op.status == "ok":
            if not present or not _rv_matches(s, exp) or op.out_rv is None or op.out_rv <= exp:
                return []
            return [(True, op.value, op.out_rv, op.out_rv)]
        if op.status == "fail":
            if op.error.startswith("404"):
                return [s] if not present else []
            if op.error.startswith("409"):  # Conflict: the object's resourceVersion is not the expected one
                return [s] if present and rv != exp else []
            return [s]
        if present and _rv_matches(s, exp):
            return [s, (True, op.value, None, max(floor, exp))]
        return [s]
    if op.kind == "delete":
        if op.status == "ok":
            return [(False, None, None, known)] if present else []
        if op.status == "fail":
            if op.error.startswith("404"):
                return [s] if not present else []
            return [s]  # refused, or 409 after the server's retries: it changed nothing
        return [s, (False, None, None, known)] if present else [s]
    raise ValueError(f"unknown operation kind {op.kind!r}")


def step(states: frozenset[State], op: Operation) -> frozenset[State]:
    """Every state the object may be in after ``op``, from any of ``states``."""
    out: set[State] = set()
    for s in states:
        out.update(_step_one(s, op))
    return frozenset(out)


def initial() -> frozenset[State]:
    """A fresh object: it does not exist yet."""
    return frozenset({ABSENT})
