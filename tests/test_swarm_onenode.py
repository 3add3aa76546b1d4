"""The Swarm lab's fallback: where nested engines cannot start, one node on the host's Docker Engine.

One short run of the fallback (a service placed by a constraint on the one node, then torn down),
and the choice itself: a forced fallback, and a nested start that fails, each say why.
"""

from __future__ import annotations

import subprocess

import pytest

from labkit.swarm import onenode
from labkit.swarm.cluster import Swarm
from labkit.swarm.engine import EngineError


def _host_docker() -> bool:
    try:
        return subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                              timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _swarm_state() -> str:
    return subprocess.run(["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"], capture_output=True,
                          text=True, timeout=20).stdout.strip()


def test_a_failed_nested_start_falls_back_and_keeps_dockerds_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(onenode.NESTED_ENV, raising=False)
    monkeypatch.setattr("labkit.swarm.hostcheck.host_allows",
                        lambda: type("H", (), {"multi_node": True})())

    def refuse(self: Swarm) -> None:
        raise EngineError("dockerd of node-1 exited (1): failed to mount overlay: invalid argument")

    monkeypatch.setattr(Swarm, "start", refuse)
    monkeypatch.setattr(onenode.OneNodeSwarm, "start", lambda self: None)
    sw = onenode.start_swarm()
    assert not sw.nested and sw.indexes == (1,)
    assert "failed to mount overlay: invalid argument" in sw.why_not
    text = sw.not_shown()
    assert "failed to mount overlay" in text and "quorum" in text, "the reader is told what and why"
    assert "one-node" in sw.note, "recorded results say they came from one node"


def test_the_setting_forces_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(onenode.NESTED_ENV, "0")
    monkeypatch.setattr(Swarm, "start", lambda self: pytest.fail("nested engines were started"))
    monkeypatch.setattr(onenode.OneNodeSwarm, "start", lambda self: None)
    sw = onenode.start_swarm()
    assert not sw.nested and "LABKIT_SWARM_NESTED=0" in sw.why_not


@pytest.mark.skipif(not _host_docker(), reason="needs the host's Docker Engine running")
def test_the_one_node_swarm_places_a_service_and_leaves_the_engine_as_it_was(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(onenode.NESTED_ENV, "0")
    before = _swarm_state()
    sw = onenode.start_swarm()
    try:
        assert [n["ManagerStatus"] for n in sw.nodes()] == ["Leader"]
        name = f"lk-onenode-{sw.id}"
        sw.docker(1, "service", "create", "-d", "--name", name, "--no-resolve-image",
                  "--constraint", f"node.hostname == {sw.hostname(1)}", "--stop-grace-period", "1s",
                  "labkit/busybox:latest", "sleep", "600")
        task = sw.wait_running(name, 1)[0]
        assert task["Node"] == sw.hostname(1)
        assert sw.container_of(task)[0] == 1
    finally:
        sw.close()
    assert _swarm_state() == before, "swarm mode is back as it was"
    assert name not in subprocess.run(["docker", "service", "ls", "--format", "{{.Name}}"], capture_output=True,
                                      text=True).stdout
    assert not sw.folder.exists()
