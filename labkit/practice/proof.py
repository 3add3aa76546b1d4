"""Prove an exercise both ways: verify fails on the untouched state and passes after the solution.

The tests use this for every exercise, and so can a teacher preparing a class. After the
solution, verify is polled, because a cluster converges (a pod is scheduled, then runs).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from labkit.practice.exercise import Exercise, Target, Verdict


@dataclass(frozen=True)
class Proof:
    before: Verdict
    after: Verdict
    seconds: float

    @property
    def proven(self) -> bool:
        return not self.before.passed and self.after.passed


def poll(ex: Exercise, target: Target, timeout: float | None = None, interval: float = 0.25) -> Verdict:
    """Verify until it passes or ``timeout`` (the exercise's own by default) runs out."""
    deadline = time.monotonic() + (ex.timeout if timeout is None else timeout)
    while True:
        try:
            v = ex.verify(target)
        except Exception as err:
            v = Verdict.not_yet(f"{type(err).__name__}: {err}")
        if v.passed or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def prove(ex: Exercise, target: Target) -> Proof:
    """Set up, verify (must fail), solve, verify until it passes; cleanup always runs."""
    t0 = time.monotonic()
    target.workdir.mkdir(parents=True, exist_ok=True)
    try:
        if ex.setup:
            ex.setup(target)
        before = ex.verify(target)
        ex.solution(target)
        after = poll(ex, target)
    finally:
        if ex.cleanup:
            ex.cleanup(target)
    return Proof(before, after, time.monotonic() - t0)


def wait_until(what: str, pred: Callable[[], object], timeout: float = 60, every: float = 0.25) -> None:
    """For set-ups and solutions: poll ``pred`` until it is true; TimeoutError naming ``what`` otherwise."""
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise TimeoutError(what)
        time.sleep(every)
