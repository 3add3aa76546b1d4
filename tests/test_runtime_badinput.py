"""Bad input gets one clear line and a non-zero exit code — never a traceback."""

from __future__ import annotations

import pytest
from support.runtime import available, labkit


def _one_clear_line(out, code: int, *words: str) -> None:
    assert out.returncode == code, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr
    for w in words:
        assert w in out.stderr, out.stderr


@pytest.fixture
def real():
    for name in ("native", "runc"):
        if available(name)[0]:
            return name
    pytest.skip("no real runtime on this host")


def test_unknown_image(real):
    out = labkit("run", "--rm", "--runtime", real, "no-such-image", "--", "true")
    _one_clear_line(out, 125, "no image", "no-such-image")


def test_command_missing_from_the_image(real):
    out = labkit("run", "--rm", "--runtime", real, "busybox", "--", "no-such-command")
    _one_clear_line(out, 127, "no-such-command", "not found")


def test_memory_limit_too_small_to_start(real):
    out = labkit("run", "--rm", "--runtime", real, "--memory", "1m", "busybox", "--", "true")
    _one_clear_line(out, 125, "too small")


def test_unreadable_memory_size():
    out = labkit("run", "--rm", "--memory", "lots", "busybox", "--", "true")
    _one_clear_line(out, 125, "32m")


def test_unknown_runtime():
    out = labkit("run", "--rm", "--runtime", "podman", "busybox", "--", "true")
    _one_clear_line(out, 2, "podman", "native")


def test_not_root_without_runtime_falls_back_to_simulated_and_says_so():
    out = labkit("run", "--rm", "busybox", "--", "echo", "hi",
                 env={"LABKIT_PRETEND_NOT_ROOT": "1", "DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    _one_clear_line(out, 0, "not root", "simulated")
    assert out.stdout == "hi\n"


def test_not_root_with_a_real_runtime_asked_for_is_an_error():
    out = labkit("run", "--rm", "--runtime", "native", "busybox", "--", "true",
                 env={"LABKIT_PRETEND_NOT_ROOT": "1"})
    _one_clear_line(out, 1, "not root", "simulated")


def test_no_docker_daemon():
    out = labkit("run", "--rm", "--runtime", "docker", "busybox", "--", "true",
                 env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    _one_clear_line(out, 1, "no Docker daemon", "dockerd")


def test_unknown_container_for_logs_and_stop():
    _one_clear_line(labkit("logs", "feedfacefeed"), 1, "no container")
    _one_clear_line(labkit("stop", "feedfacefeed"), 1, "no container")
