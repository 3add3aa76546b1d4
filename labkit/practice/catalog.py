"""Find the exercises: each lab's list lives beside it, in ``labs/exercises/NN-name.py``."""

from __future__ import annotations

import importlib.util
import os
from functools import cache
from pathlib import Path

from labkit.errors import LabkitError
from labkit.practice.exercise import Exercise


def exercises_dir() -> Path:
    """``labs/exercises`` of this checkout (``LABKIT_EXERCISES_DIR`` overrides, for a class server)."""
    override = os.environ.get("LABKIT_EXERCISES_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "labs" / "exercises"


@cache
def _load(path: Path) -> tuple[Exercise, ...]:
    spec = importlib.util.spec_from_file_location(f"labkit_exercises_{path.stem.replace('-', '_')}", path)
    if spec is None or spec.loader is None:
        raise LabkitError(f"cannot load exercises from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found = getattr(module, "EXERCISES", None)
    if not isinstance(found, list | tuple) or not all(isinstance(e, Exercise) for e in found):
        raise LabkitError(f"{path} must define EXERCISES, a list of labkit.practice.Exercise")
    lab = path.stem.split("-", 1)[0]
    for e in found:
        if e.lab != lab.lstrip("0") and e.lab != lab:
            raise LabkitError(f"{path}: exercise {e.id} belongs to lab {e.lab}, not {lab}")
    return tuple(found)


def all_exercises() -> list[Exercise]:
    """Every exercise of the book, in lab order then number order."""
    out: list[Exercise] = []
    folder = exercises_dir()
    for path in sorted(folder.glob("[0-9]*.py")):
        out.extend(_load(path))
    ids = [e.id for e in out]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise LabkitError(f"exercise ids used twice: {', '.join(sorted(dup))}")
    return sorted(out, key=lambda e: (int(e.lab), int(e.id.split(".")[1])))


def exercises_for(lab: str | int) -> list[Exercise]:
    """One lab's exercises, easiest first as the lab lists them."""
    lab = str(int(str(lab).split("-", 1)[0]))
    return [e for e in all_exercises() if str(int(e.lab)) == lab]


def exercise(exercise_id: str) -> Exercise:
    for e in all_exercises():
        if e.id == exercise_id:
            return e
    known = ", ".join(e.id for e in all_exercises()) or "none yet"
    raise LabkitError(f"no exercise {exercise_id!r}; known exercises: {known}")
