"""Every exercise of the book, proven both ways: verify fails on the untouched state, and passes
after the reference solution has run against the real system.

Exercises that need a cluster share one per distinct ``Exercise.cluster`` setting, and each runs in
its own namespace, as a student would in a class.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from labkit.practice import Target, all_exercises
from labkit.practice.proof import prove

EXERCISES = all_exercises()
_clusters: dict[str, object] = {}


@pytest.fixture(scope="module")
def clusters() -> Iterator[dict[str, object]]:
    yield _clusters
    for c in _clusters.values():
        c.stop()  # type: ignore[attr-defined]
    _clusters.clear()


def _cluster_for(clusters: dict[str, object], spec: dict) -> object:
    key = json.dumps(spec, sort_keys=True)
    if key not in clusters:
        import labkit

        clusters[key] = labkit.Cluster(**{"processes": False, "store": "memory", **spec}).start()
    return clusters[key]


@pytest.mark.parametrize("ex", EXERCISES, ids=[e.id for e in EXERCISES])
def test_exercise_is_proven_both_ways(ex, clusters, tmp_path) -> None:  # noqa: ANN001
    from labkit import paths, system_parts

    missing = [n for n in ex.needs if (n == "root" and not paths.is_root()) or (n != "root" and not system_parts.which(n))]
    if missing:
        pytest.skip(f"exercise {ex.id} needs {', '.join(missing)}")
    target = Target(namespace="default", workdir=tmp_path / "work", owner=f"ex{ex.id.replace('.', '-')}")
    if ex.cluster is not None:
        c = _cluster_for(clusters, ex.cluster)
        target.kubeconfig = c.kubeconfig  # type: ignore[attr-defined]
        target.namespace = f"ex-{ex.id.replace('.', '-')}"
        target.core.create_namespace({"metadata": {"name": target.namespace}})
    try:
        proof = prove(ex, target)
    finally:
        if ex.cluster is not None:
            target.core.delete_namespace(target.namespace)
    assert not proof.before.passed, f"{ex.id}: verify passed before anything was done ({proof.before.message})"
    assert proof.after.passed, f"{ex.id}: the reference solution did not pass: {proof.after.message}"


def test_every_lab_has_two_to_four_exercises() -> None:
    from collections import Counter
    from pathlib import Path

    labs = sorted(p.name.split("-")[0].lstrip("0") for p in (Path(__file__).parents[1] / "labs").glob("[0-9]*.md"))
    have = Counter(e.lab.lstrip("0") for e in EXERCISES)
    wrong = {lab: have.get(lab, 0) for lab in labs if not 2 <= have.get(lab, 0) <= 8}
    assert not wrong, f"labs whose exercise count is outside 2-8 (the tracks have one per step): {wrong}"


def test_killercoda_export_and_verify_cli(tmp_path) -> None:  # noqa: ANN001
    from labkit.practice.killercoda import export

    lab = EXERCISES[0].lab
    root = export(lab, tmp_path / "scenario")
    index = json.loads((root / "index.json").read_text())
    steps = index["details"]["steps"]
    assert len(steps) == len([e for e in EXERCISES if e.lab == lab])
    assert all((root / s["text"]).exists() and (root / s["verify"]).exists() for s in steps)
    out = subprocess.run([sys.executable, "-m", "labkit.cli", "exercise", "verify", "99.9"], capture_output=True,
                         text=True)
    assert out.returncode != 0 and "no exercise '99.9'" in out.stderr
