"""Exercises that ask a learner to change a real system, and check it.

An exercise is data (:class:`Exercise`): a statement, an optional set-up, a ``verify`` function
that reads the real system, a reference ``solution``, and tags. Each lab's exercises live beside
it, in ``labs/exercises/NN-name.py`` (a list called ``EXERCISES``). The same verify functions
serve three callers, which is why they take a :class:`Target` (a kubeconfig, a namespace, a work
folder) and never a notebook variable:

- the notebook: ``check("21.2", c)`` (:func:`labkit.practice.check.check`);
- the tests: every exercise is proven both ways (verify fails on the untouched state and passes
  after the reference solution), in ``tests/test_exercises.py``;
- the classroom server, which runs them per student namespace with the teacher's credentials.
"""

from labkit.practice.catalog import all_exercises, exercise, exercises_for
from labkit.practice.check import check, show_exercises
from labkit.practice.exercise import Exercise, Target, Verdict

__all__ = ["Exercise", "Target", "Verdict", "all_exercises", "check", "exercise", "exercises_for",
           "show_exercises"]
