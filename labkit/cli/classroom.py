"""``labkit class up|status|check|down``: one secure control plane for a room of students."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import click

DEFAULT_EXERCISES = "13.1,13.3,14.1,14.2,14.3"


@click.group("class")
def class_() -> None:
    """Run a class: per-student namespaces, tokens, quotas, checks and a live progress page."""


def _fail(msg: str) -> click.ClickException:
    return click.ClickException(msg)


@class_.command()
@click.option("--students", type=click.IntRange(1, 200), default=None, help="Number of students (student-1 …).")
@click.option("--roster", type=click.Path(dir_okay=False), default=None,
              help="A file with one student name a line (optionally 'name,size').")
@click.option("--size", default="small", show_default=True, type=click.Choice(["small", "medium", "large"]),
              help="Each student's budget (quota and limits), unless the roster says otherwise.")
@click.option("--dir", "folder", type=click.Path(file_okay=False), default=None,
              help="Where kubeconfigs, handouts and the gradebook go (default: ./labkit-class-NAME).")
@click.option("--name", default="default", show_default=True, help="Class name (several can run side by side).")
@click.option("--nodes", default=2, show_default=True, type=click.IntRange(1, 20))
@click.option("--runtime", default=None, help="native | runc | crun | docker | simulated (default: the best here).")
@click.option("--pod-security", default="baseline", show_default=True, type=click.Choice(["baseline", "restricted"]),
              help="The Pod Security level every student namespace enforces.")
@click.option("--exercises", default=DEFAULT_EXERCISES, show_default=True,
              help="Exercise ids the checks and the progress page cover (comma-separated).")
@click.option("--check-interval", default=10.0, show_default=True, type=float,
              help="Seconds between the server's check rounds (0: only on request).")
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Where the API server listens for students (an address of this machine on the room's network).")
@click.option("--progress-port", default=0, type=int, help="Port of the progress page (default: a free one).")
def up(students: int | None, roster: str | None, size: str, folder: str | None, name: str, nodes: int,
       runtime: str | None, pod_security: str, exercises: str, check_interval: float, address: str,
       progress_port: int) -> None:
    """Start the class server: a secure cluster, one namespace, quota and kubeconfig per student."""
    from labkit.classroom import roster as rosters
    from labkit.classroom import state
    from labkit.practice import exercise

    if (students is None) == (roster is None):
        raise _fail("give either --students N or --roster FILE")
    try:
        people = rosters.numbered(students, size) if students else rosters.read_roster(roster, size)
        ids = [e.strip() for e in exercises.split(",") if e.strip()]
        for e in ids:
            if exercise(e).cluster is None:
                raise ValueError(f"exercise {e} needs no cluster: a class checks cluster exercises only")
    except Exception as exc:  # noqa: BLE001 - a bad roster or exercise id is the user's to fix
        raise _fail(str(exc)) from None
    try:
        old = state.read(name)
        if state.server_alive(old):
            raise _fail(f"class {name!r} is already up (progress {old.get('progress')}); "
                        f"run 'labkit class down --name {name}' first, or pick another --name")
    except state.ClassError:
        pass
    out = Path(folder or f"labkit-class-{name}").resolve()
    spec = {"students": [{"name": s.name, "size": s.size} for s in people], "dir": str(out), "nodes": nodes,
            "runtime": runtime, "pod_security": pod_security, "exercises": ids, "check_interval": check_interval,
            "address": address, "progress_port": progress_port}
    f = state.folder(name)
    f.mkdir(parents=True, exist_ok=True)
    (f / state.STATE_FILE).unlink(missing_ok=True)
    (f / state.SPEC_FILE).write_text(json.dumps(spec, indent=1))
    logf = f / "server.log"
    with open(logf, "ab") as lf:
        proc = subprocess.Popen([sys.executable, "-m", "labkit.classroom.server", "--name", name], stdout=lf,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    info = _wait_ready(name, proc, logf, timeout=180.0)
    click.echo(describe(info))


def _wait_ready(name: str, proc: subprocess.Popen, logf: Path, timeout: float) -> dict:
    from labkit.classroom import state

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            info = state.read(name)
        except (state.ClassError, ValueError):
            info = {}
        if info.get("ready"):
            return info
        if info.get("error") or proc.poll() is not None:
            proc.wait(60)
            tail = "\n".join(logf.read_text(errors="replace").splitlines()[-15:]) if logf.exists() else ""
            _teardown(name)
            raise _fail(f"the class could not start: {info.get('error') or 'its server exited'}; "
                        f"{logf} ends with:\n{tail}")
        time.sleep(0.1)
    proc.terminate()
    proc.wait(60)
    _teardown(name)
    raise _fail(f"the class was not ready after {timeout:.0f}s; see {logf}")


def describe(info: dict) -> str:
    d = Path(info["dir"])
    lines = [f"class {info['name']}: {len(info['students'])} student(s), Pod Security {info['pod_security']}",
             f"  API server       {info['api']}",
             f"  teacher          export KUBECONFIG={info['teacher_kubeconfig']}   (cluster-admin)",
             f"  kubeconfigs      {d / 'kubeconfigs'}/NAME.kubeconfig   (one token each)",
             f"  handout          {d / 'handout.html'}   (print it: one page per student)",
             f"  progress page    {info['progress']}",
             f"  gradebook        {info['gradebook']}",
             f"  another machine  {info['join']}",
             "",
             "  labkit class status   |   labkit class check   |   labkit class down"]
    if "//127.0.0.1:" not in info["api"]:
        lines.insert(2, "  (students reach it over the room's network: TLS and their tokens protect it)")
    return "\n".join(lines)


def _load(name: str) -> dict:
    from labkit.classroom import state

    try:
        info = state.read(name)
    except state.ClassError as exc:
        raise _fail(str(exc)) from None
    if not info.get("ready"):
        raise _fail(f"class {name!r} did not finish starting; 'labkit class down --name {name}' removes what it left")
    return info


@class_.command()
@click.option("--name", default="default", show_default=True)
def status(name: str) -> None:
    """Who is active and what each student uses: pods, CPU and memory requested against the quota."""
    from labkit.classroom import state, usage

    info = _load(name)
    alive = state.server_alive(info)
    click.echo(f"class {name}: server {'running' if alive else 'NOT RUNNING'}, API {info['api']}, "
               f"progress {info['progress']}")
    try:
        rows = usage.rows(info)
    except Exception as exc:  # noqa: BLE001 - the API server is down: say so
        raise _fail(f"the class's API server does not answer: {exc}") from None
    click.echo(usage.table(rows))


@class_.command()
@click.option("--name", default="default", show_default=True)
@click.option("--student", "only_students", multiple=True, help="Only this student (repeatable).")
@click.option("--exercise", "only_exercises", multiple=True, help="Only this exercise id (repeatable).")
def check(name: str, only_students: tuple[str, ...], only_exercises: tuple[str, ...]) -> None:
    """Run the exercises' verify functions against each student's namespace; write the gradebook."""
    from labkit.classroom import gradebook, state

    info = _load(name)
    people = state.students(info)
    known = {s.name for s in people}
    for s in only_students:
        if s not in known:
            raise _fail(f"no student {s!r} in class {name!r}; have {', '.join(sorted(known))}")
    people = [s for s in people if not only_students or s.name in only_students]
    ids = list(only_exercises) or list(info["exercises"])
    from labkit.practice import exercise

    try:
        ids = [exercise(e).id for e in ids]
    except Exception as exc:  # noqa: BLE001 - an unknown id
        raise _fail(str(exc)) from None
    results = gradebook.run_checks(info["teacher_kubeconfig"], people, ids, Path(info["gradebook"]),
                                   Path(info["dir"]) / "work")
    for r in results:
        click.echo(f"  {r.student:<16} {r.exercise:<6} {'passed ' if r.passed else 'not yet'}  {r.message}")
    passed = sum(r.passed for r in results)
    click.echo(f"{passed} of {len(results)} passed; gradebook {info['gradebook']}")


@class_.command()
@click.option("--name", default="default", show_default=True)
def down(name: str) -> None:
    """Stop the class server and its cluster; remove namespaces, tokens, kubeconfigs and handouts."""
    from labkit.classroom import state

    try:
        info = state.read(name)
    except state.ClassError as exc:
        if not state.folder(name).exists():
            raise _fail(str(exc)) from None
        info = {}
    kept = _teardown(name, info)
    click.echo(f"class {name} is down" + (f"; the gradebook stays at {kept}" if kept else ""))


def _teardown(name: str, info: dict | None = None) -> str | None:
    from labkit.classroom.teardown import teardown

    return teardown(name, info)


