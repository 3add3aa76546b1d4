"""Lab 17's exercises: write histories that the linearizability checker must judge, and be right.

The learner's history is a JSON list of operations (the fields of
``labkit.reliability.history.Operation``) in their exercise folder; each check runs the real
checker on it, so only a history that is really (not) linearizable passes.
"""

from __future__ import annotations

import json

from labkit.practice import Exercise, Target, Verdict

FIELDS = ("id", "process", "key", "kind", "value", "expected_rv", "call", "ret", "status", "out_value", "out_rv",
          "error")


def _load(t: Target, name: str) -> tuple[list | None, str]:
    from pathlib import Path

    from labkit.reliability.history import Operation

    path = t.workdir / name
    if not path.exists():
        shown = f"~/{path.relative_to(Path.home())}" if path.is_relative_to(Path.home()) else str(path)
        return None, f"write your history to {shown}"
    try:
        rows = json.loads(path.read_text())
        ops = [Operation(**{k: v for k, v in row.items() if k in FIELDS}) for row in rows]
    except (ValueError, TypeError) as exc:
        return None, f"{path.name} is not a list of operations: {exc}"
    return ops, ""


def _overlap(a, b) -> bool:  # noqa: ANN001
    return a.call < b.ret and b.call < a.ret


def _verify_lost_update(t: Target) -> Verdict:
    from labkit.reliability.linearizability import check_history

    ops, why = _load(t, "lost-update.json")
    if ops is None:
        return Verdict.not_yet(why)
    cas = [o for o in ops if o.kind == "cas" and o.status == "ok"]
    pairs = [(a, b) for a in cas for b in cas if a.id < b.id and a.expected_rv == b.expected_rv
             and a.process != b.process]
    if not pairs:
        return Verdict.not_yet("a lost update needs two clients whose cas name the same resourceVersion and both "
                               "succeed")
    result = check_history(ops)
    if result.ok:
        return Verdict.not_yet("the checker finds an order for your history: make both cas acknowledged with "
                               "the same expected resourceVersion, and a read afterwards that sees only one")
    return Verdict.ok("the checker rejects it: " + result.explain().splitlines()[0])


def _solve_lost_update(t: Target) -> None:
    rows = [
        {"id": 0, "process": 0, "key": "cm", "kind": "create", "value": "a", "call": 0, "ret": 1, "status": "ok",
         "out_rv": 5},
        {"id": 1, "process": 1, "key": "cm", "kind": "cas", "value": "b", "expected_rv": 5, "call": 2, "ret": 3,
         "status": "ok", "out_rv": 6},
        {"id": 2, "process": 2, "key": "cm", "kind": "cas", "value": "c", "expected_rv": 5, "call": 4, "ret": 5,
         "status": "ok", "out_rv": 7},
    ]
    t.workdir.mkdir(parents=True, exist_ok=True)
    (t.workdir / "lost-update.json").write_text(json.dumps(rows, indent=1))


def _verify_race(t: Target) -> Verdict:
    from labkit.reliability.linearizability import check_history

    ops, why = _load(t, "race.json")
    if ops is None:
        return Verdict.not_yet(why)
    cas = [o for o in ops if o.kind == "cas"]
    won = [o for o in cas if o.status == "ok"]
    lost = [o for o in cas if o.status == "fail" and "409" in (o.error or "")]
    racing = [(a, b) for a in won for b in lost if a.expected_rv == b.expected_rv and a.process != b.process
              and _overlap(a, b)]
    if not racing:
        return Verdict.not_yet("two clients must send a cas with the same expected resourceVersion at the same "
                               "time (overlapping call and return times): one succeeds, the other gets 409")
    result = check_history(ops)
    if not result.ok:
        return Verdict.not_yet("the checker rejects your history:\n" + result.explain())
    return Verdict.ok(f"a race with one winner and one 409 Conflict, and {result.explain()}")


def _solve_race(t: Target) -> None:
    rows = [
        {"id": 0, "process": 0, "key": "cm", "kind": "create", "value": "a", "call": 0, "ret": 1, "status": "ok",
         "out_rv": 5},
        {"id": 1, "process": 1, "key": "cm", "kind": "cas", "value": "b", "expected_rv": 5, "call": 2, "ret": 4,
         "status": "ok", "out_rv": 6},
        {"id": 2, "process": 2, "key": "cm", "kind": "cas", "value": "c", "expected_rv": 5, "call": 3, "ret": 5,
         "status": "fail", "error": "409 Conflict"},
        {"id": 3, "process": 0, "key": "cm", "kind": "get", "call": 6, "ret": 7, "status": "ok", "out_value": "b",
         "out_rv": 6},
    ]
    t.workdir.mkdir(parents=True, exist_ok=True)
    (t.workdir / "race.json").write_text(json.dumps(rows, indent=1))


EXERCISES = [
    Exercise(
        id="17.1", title="A lost update the checker catches",
        statement="""Write a history, `lost-update.json` in your exercise folder (a JSON list of operations with
the fields of `labkit.reliability.history.Operation`), in which two clients each update the same
object with a compare-and-swap naming the same `resourceVersion`, and both are acknowledged. The
check runs the lab's checker on it and passes when the checker proves it impossible.""",
        verify=_verify_lost_update, solution=_solve_lost_update,
        solution_text="""A create acknowledged at rv 5, then `cas rv=5 -> b` (ok, rv 6) by client 1 and later
`cas rv=5 -> c` (ok, rv 7) by client 2: after the first swap the object is at rv 6, so the second
cannot succeed in any order.""",
        concept="linearizability, compare-and-swap", difficulty="easy"),
    Exercise(
        id="17.2", title="A race that is allowed",
        statement="""Write `race.json`: two clients send a compare-and-swap with the same `resourceVersion` at the
same time (their call and return times overlap); one is acknowledged and the other gets
`409 Conflict` (status `fail`, error containing `409`). Add a read afterwards. The check passes when
the checker finds the history linearizable: this is what a correct apiserver lets happen.""",
        verify=_verify_race, solution=_solve_race,
        solution_text="""create a@5; client 1 `cas rv=5 -> b` over [2, 4] ok at rv 6; client 2 `cas rv=5 -> c` over
[3, 5] fail 409; then a get reading b@6. The order create, cas b, cas c (refused), get fits.""",
        concept="linearizability, optimistic concurrency", difficulty="medium"),
]
