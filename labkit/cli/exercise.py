"""``labkit exercise``: list, prepare, verify and export the book's exercises from a shell."""

from __future__ import annotations

import sys

import click


@click.group()
def exercise() -> None:
    """The labs' exercises, checked against the real system."""


@exercise.command("list")
@click.option("--lab", default=None, help="Only this lab (e.g. 21).")
def list_(lab: str | None) -> None:
    """List exercises: id, difficulty, title."""
    from labkit.practice import all_exercises, exercises_for

    for ex in exercises_for(lab) if lab else all_exercises():
        click.echo(f"{ex.id:>6}  {ex.difficulty:<6}  {ex.title}")


def _target(exercise_id: str, kubeconfig: str | None, namespace: str, workdir: str | None):
    from labkit.practice.check import target_for

    return target_for(exercise_id, kubeconfig, namespace, workdir)


@exercise.command()
@click.argument("exercise_id")
@click.option("--kubeconfig", default=None, help="The cluster to check (default: $KUBECONFIG).")
@click.option("--namespace", default="default", show_default=True)
@click.option("--workdir", default=None, help="The learner's files (default: ~/labkit-exercises/LAB).")
def verify(exercise_id: str, kubeconfig: str | None, namespace: str, workdir: str | None) -> None:
    """Exit 0 when EXERCISE_ID is done, 1 with a hint when not."""
    from labkit.errors import LabkitError
    from labkit.practice import exercise as find

    try:
        ex = find(exercise_id)
    except LabkitError as err:
        raise click.ClickException(str(err)) from None
    v = ex.verify(_target(exercise_id, kubeconfig, namespace, workdir))
    click.echo(f"{ex.id}: {'passed' if v.passed else 'not yet'}. {v.message}")
    sys.exit(0 if v.passed else 1)


@exercise.command()
@click.argument("exercise_id")
@click.option("--kubeconfig", default=None, help="The cluster to prepare (default: $KUBECONFIG).")
@click.option("--namespace", default="default", show_default=True)
@click.option("--workdir", default=None, help="The learner's files (default: ~/labkit-exercises/LAB).")
@click.option("--undo", is_flag=True, help="Run the exercise's clean-up instead (a taint, a host container).")
def prepare(exercise_id: str, kubeconfig: str | None, namespace: str, workdir: str | None, undo: bool) -> None:
    """Make EXERCISE_ID's starting state (a broken Deployment, a Pending pod), or remove it with --undo."""
    from labkit.errors import LabkitError
    from labkit.practice.check import clean_up
    from labkit.practice.check import prepare as starting_state

    try:
        if undo:
            clean_up(exercise_id, kubeconfig, namespace, workdir)
            click.echo(f"{exercise_id}: cleaned up")
        else:
            starting_state(exercise_id, kubeconfig, namespace, workdir)
    except LabkitError as err:
        raise click.ClickException(str(err)) from None


@exercise.command()
@click.argument("lab")
@click.argument("out", type=click.Path(file_okay=False))
def export(lab: str, out: str) -> None:
    """Write LAB's exercises as a Killercoda scenario folder OUT (index.json, stepN/text.md, verify.sh)."""
    from labkit.practice.killercoda import export as write

    try:
        root = write(lab, out)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"wrote {root}/index.json")
