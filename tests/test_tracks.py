"""The two build-it-yourself tracks' own machinery (their exercises are proven in test_exercises.py)."""

from __future__ import annotations

import importlib.util
import os
import re
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TRACK = REPO / "labs" / "tracks" / "runtime"
# flags the README's short lines leave out: the kubelet's clean exit, a one-member etcd's peer defaults
OPTIONAL = {"--cleanup-on-exit", "--name", "--listen-peer-urls", "--initial-advertise-peer-urls", "--initial-cluster"}


def _exercises_module(stem: str):  # noqa: ANN202 - the lab's module of exercises
    spec = importlib.util.spec_from_file_location(f"track_{stem.replace('-', '_')}", REPO / "labs" / "exercises"
                                                  / f"{stem}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_steps_solution_fills_in_that_step_and_keeps_the_learners_later_work(tmp_path) -> None:  # noqa: ANN001
    ex = _exercises_module("30-write-a-runtime")
    mine = tmp_path / "runtime.py"
    mine.write_text((TRACK / "skeleton.py").read_text().replace(
        'raise NotImplementedError("TODO step 8: drop the bounding set, then capset")', "pass  # my own step 8"))
    ex.fill_in(mine, ["create_namespaces", "set_hostname"])
    text = mine.read_text()
    assert "sc.unshare(sc.CLONE_NEWUTS" in text and "sc.sethostname(name)" in text
    assert "TODO step 3" in text and "pass  # my own step 8" in text
    compile(text, str(mine), "exec")


def test_the_cluster_by_hand_commands_are_the_readmes(tmp_path) -> None:  # noqa: ANN001
    from labkit.practice.buildcluster import COMPONENTS, HandCluster

    readme = (REPO / "README.md").read_text()
    hc = HandCluster(tmp_path / "cluster", runtime="simulated")
    for name in COMPONENTS:
        cmd = hc.command(name)
        program = " ".join(cmd[1:3]) if cmd[1] == "-m" else Path(cmd[0]).name
        flags = [a for a in cmd if a.startswith("--")]
        line = next((x for x in readme.splitlines() if re.match(rf"(python )?{re.escape(program)}(\s|$)", x)), None)
        assert line is not None, f"README lists no command for {name} ({program})"
        assert all(f in line for f in flags if f not in OPTIONAL), (name, flags, line)


@pytest.mark.skipif(os.geteuid() != 0, reason="a container runtime needs root")
def test_the_runner_refuses_to_rename_the_host(tmp_path) -> None:  # noqa: ANN001
    from labkit.practice import buildruntime as rt

    mine = tmp_path / "runtime.py"
    mine.write_text((TRACK / "solution.py").read_text().replace("sc.CLONE_NEWUTS | ", ""))
    before = socket.gethostname()
    with pytest.raises(rt.RuntimeStepError, match="would rename the host"):
        rt.start(mine, 2, "not-the-host", tmp_path / "run")
    assert socket.gethostname() == before
    assert not (tmp_path / "run").exists()
