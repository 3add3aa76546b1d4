"""The notebook side: show a lab's exercises, and ``check("21.2", c)`` one against the real system."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from labkit.practice.catalog import exercise, exercises_for
from labkit.practice.exercise import Target, Verdict, default_workdir


def target_for(exercise_id: str, cluster: Any = None, namespace: str = "default",
               workdir: str | os.PathLike | None = None, owner: str = "ex") -> Target:
    """A Target from what a notebook has: a labkit Cluster (or ConnectedCluster), a kubeconfig path, or None."""
    kubeconfig = getattr(cluster, "kubeconfig", cluster)
    if kubeconfig is None and os.environ.get("KUBECONFIG"):
        kubeconfig = os.environ["KUBECONFIG"].split(os.pathsep)[0]
    lab = exercise_id.split(".", 1)[0]
    folder = Path(workdir) if workdir else default_workdir(lab)
    return Target(kubeconfig=str(kubeconfig) if kubeconfig else None, namespace=namespace, workdir=folder,
                  owner=owner)


def check(exercise_id: str, cluster: Any = None, namespace: str = "default",
          workdir: str | os.PathLike | None = None) -> Verdict:
    """Run one exercise's verify function and print what it found (passed, or the hint)."""
    ex = exercise(exercise_id)
    if ex.cluster is not None and cluster is None and not os.environ.get("KUBECONFIG"):
        v = Verdict.not_yet(f"exercise {ex.id} checks a cluster: call check({ex.id!r}, c) with your labkit.Cluster "
                            "or a kubeconfig path")
    else:
        target = target_for(exercise_id, cluster, namespace, workdir)
        try:
            v = ex.verify(target)
        except Exception as err:  # a verify function reports, it does not crash the notebook
            v = Verdict.not_yet(f"could not read the system yet ({type(err).__name__}: {err})")
    mark = "passed" if v.passed else "not yet"
    print(f"Exercise {ex.id} ({ex.title}): {mark}. {v.message}")
    return v


def exercises_markdown(lab: str | int) -> str:
    """The statements of a lab's exercises as Markdown (what the book shows at the end of a lab)."""
    parts = []
    for ex in exercises_for(lab):
        call = f'check("{ex.id}", c)' if ex.cluster is not None else f'check("{ex.id}")'  # no cluster to pass
        parts.append(f"**Exercise {ex.id}: {ex.title}** ({ex.difficulty})\n\n{ex.statement.strip()}\n\n"
                     f"Check it with `{call}`.")
    return "\n\n".join(parts) if parts else "_No exercises for this lab yet._"


def show_exercises(lab: str | int) -> Any:
    """Display a lab's exercises; in the static site they render as ordinary text."""
    from IPython.display import Markdown

    return Markdown(exercises_markdown(lab))


def prepare(exercise_id: str, cluster: Any = None, namespace: str = "default",
            workdir: str | os.PathLike | None = None) -> Target:
    """Make an exercise's starting state (a broken Deployment, a tainted node), so the learner can begin."""
    ex = exercise(exercise_id)
    target = target_for(exercise_id, cluster, namespace, workdir)
    target.workdir.mkdir(parents=True, exist_ok=True)
    if ex.setup:
        ex.setup(target)
    print(f"Exercise {ex.id} ({ex.title}): ready" + (" (its set-up ran)" if ex.setup else ""))
    return target


def clean_up(exercise_id: str, cluster: Any = None, namespace: str = "default",
             workdir: str | os.PathLike | None = None) -> None:
    """Undo what an exercise's set-up and solution made outside the namespace (a taint, a host container)."""
    ex = exercise(exercise_id)
    if ex.cleanup:
        ex.cleanup(target_for(exercise_id, cluster, namespace, workdir))
