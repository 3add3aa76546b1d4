"""Server-side checks and the gradebook they fill.

A check runs an exercise's own ``verify`` function (the one the notebook's ``check()`` runs) against
one student's namespace, with the teacher's kubeconfig: the student cannot fake a pass, and
nothing is installed on the student's side. The gradebook is a CSV (``student,exercise,passed,when``),
one row per student and exercise. A pass stays a pass (``when`` is when it first passed: a student
who tidies up afterwards keeps the grade); a row not yet passed carries the time of its last check.
``labkit class check`` and the class server both write it, under a lock, so the progress page shows
whichever ran last.
"""

from __future__ import annotations

import csv
import fcntl
import io
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from labkit.atomicfile import write_atomic
from labkit.classroom.roster import Student

FIELDS = ("student", "exercise", "passed", "when")


@dataclass
class Result:
    student: str
    exercise: str
    passed: bool
    when: str
    message: str = ""


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_one(teacher_kubeconfig: str, s: Student, exercise_id: str, workdir: Path, api_client: Any = None) -> Result:
    """Run ``exercise_id``'s verify against ``s``'s namespace; an exception is a hint, never a crash.

    ``api_client`` (the teacher's, shared by a round's checks) saves reading the kubeconfig each time."""
    from labkit.practice import exercise
    from labkit.practice.exercise import Target, Verdict

    ex = exercise(exercise_id)
    target = Target(kubeconfig=teacher_kubeconfig, namespace=s.namespace, workdir=workdir / s.name / ex.lab,
                    owner=s.name)
    if api_client is not None:
        target.__dict__["api_client"] = api_client  # the cached_property's slot
    try:
        v = ex.verify(target)
    except Exception as err:  # noqa: BLE001 - a student's half-made object must not stop the class's checks
        v = Verdict.not_yet(f"could not check yet ({type(err).__name__}: {err})")
    return Result(s.name, ex.id, bool(v.passed), now(), v.message)


def read(path: Path) -> dict[tuple[str, str], Result]:
    """The gradebook's rows, keyed by (student, exercise); empty when there is none yet."""
    if not path.exists():
        return {}
    rows = {}
    for r in csv.DictReader(io.StringIO(path.read_text())):
        rows[(r["student"], r["exercise"])] = Result(r["student"], r["exercise"], r["passed"] == "true", r["when"])
    return rows


@contextmanager
def _locked(path: Path):
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def record(path: Path, results: Iterable[Result]) -> dict[tuple[str, str], Result]:
    """Merge ``results`` into the gradebook at ``path`` (a pass is never taken back); returns all rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        rows = read(path)
        for r in results:
            old = rows.get((r.student, r.exercise))
            if old is not None and old.passed:
                continue
            rows[(r.student, r.exercise)] = r
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(FIELDS)
        for key in sorted(rows):
            r = rows[key]
            w.writerow([r.student, r.exercise, "true" if r.passed else "false", r.when])
        write_atomic(path, out.getvalue())
    return rows


def run_checks(teacher_kubeconfig: str, students: list[Student], exercises: list[str], gradebook: Path,
               workdir: Path) -> list[Result]:
    """Check every (student, exercise) pair and record the results; returns this round's results."""
    from kubernetes import config

    api = config.new_client_from_config(config_file=teacher_kubeconfig)
    try:
        results = [check_one(teacher_kubeconfig, s, ex, workdir, api) for s in students for ex in exercises]
    finally:
        api.close()
    record(gradebook, results)
    return results
