"""A notebook's side of an exercise with a set-up: prepare() makes the starting state, check() reads
it, clean_up() undoes it (for the lab pages, whose exercises start from a prepared state)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

SAMPLE = textwrap.dedent('''
        from labkit.practice import Exercise, Verdict

        def _setup(t):
            (t.workdir / "state").write_text("broken")

        def _verify(t):
            f = t.workdir / "state"
            if not f.exists():
                return Verdict.not_yet("no state: prepare the exercise first")
            return Verdict.ok("fixed") if f.read_text() == "fixed" else Verdict.not_yet("the state is broken")

        EXERCISES = [Exercise(id="98.1", title="Fix the state", statement="Fix it.", setup=_setup,
                              verify=_verify, solution=lambda t: (t.workdir / "state").write_text("fixed"),
                              cleanup=lambda t: (t.workdir / "state").unlink())]
    ''')


def _sample(tmp_path):  # noqa: ANN001, ANN202
    folder = tmp_path / "exercises"
    folder.mkdir()
    (folder / "98-sample.py").write_text(SAMPLE)
    return folder


def test_prepare_check_and_clean_up(tmp_path, monkeypatch, capsys) -> None:  # noqa: ANN001
    from labkit.practice.check import check, clean_up, prepare

    folder = _sample(tmp_path)
    monkeypatch.setenv("LABKIT_EXERCISES_DIR", str(folder))
    work = tmp_path / "work"
    assert "no state" in check("98.1", workdir=work).message
    target = prepare("98.1", workdir=work)
    assert target.workdir == work and "ready (its set-up ran)" in capsys.readouterr().out
    assert check("98.1", workdir=work).message == "the state is broken"
    (work / "state").write_text("fixed")
    assert check("98.1", workdir=work).passed
    clean_up("98.1", workdir=work)
    assert not (work / "state").exists()


def test_prepare_from_a_shell_and_in_a_killercoda_step(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    from labkit.practice.killercoda import export

    folder = _sample(tmp_path)
    env = {**os.environ, "LABKIT_EXERCISES_DIR": str(folder)}
    work = tmp_path / "work"

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "labkit.cli", "exercise", *args, "--workdir", str(work)],
                              capture_output=True, text=True, env=env)

    assert cli("prepare", "98.1").returncode == 0 and (work / "state").read_text() == "broken"
    out = cli("verify", "98.1")
    assert out.returncode == 1 and "the state is broken" in out.stdout
    assert cli("prepare", "98.1", "--undo").returncode == 0 and not (work / "state").exists()
    monkeypatch.setenv("LABKIT_EXERCISES_DIR", str(folder))
    root = export("98", tmp_path / "scenario")
    step = json.loads((root / "index.json").read_text())["details"]["steps"][0]
    assert "labkit exercise prepare 98.1" in (root / step["background"]).read_text()
