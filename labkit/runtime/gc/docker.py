"""Leftover Docker containers labelled ``labkit=1``, and swarm mode with its labelled services
when labkit's marker says labkit turned it on (:mod:`labkit.runtime.swarm`)."""

from __future__ import annotations

import os

from labkit.runtime.gc import Kind, Leak


# --- docker ---------------------------------------------------------------------------
def _docker_client():
    if not os.path.exists("/var/run/docker.sock"):
        return None
    try:
        import docker

        c = docker.DockerClient(base_url="unix:///var/run/docker.sock", timeout=20)
        c.ping()
        return c
    except Exception:  # noqa: BLE001 - no daemon: nothing to collect there
        return None


def _docker_leaks() -> list[Leak]:
    c = _docker_client()
    if c is None:
        return []
    try:
        return [Leak("docker", f"{x.short_id} {x.name}") for x in c.containers.list(all=True, filters={"label": "labkit=1"}, ignore_removed=True)]
    finally:
        c.close()


def _remove_docker() -> None:
    c = _docker_client()
    if c is None:
        return
    try:
        for x in c.containers.list(all=True, filters={"label": "labkit=1"}, ignore_removed=True):
            try:
                x.remove(force=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
    finally:
        c.close()


def _swarm_leaks() -> list[Leak]:
    from labkit.runtime import swarm

    return [Leak("swarm", what) for what in swarm.leftover()]


def _remove_swarm() -> None:
    from labkit.runtime import swarm

    swarm.remove()


def _swarm_leaks() -> list[Leak]:
    from labkit.runtime import swarm

    return [Leak("swarm", what) for what in swarm.leftover()]


def _remove_swarm() -> None:
    from labkit.runtime import swarm

    swarm.remove()


DOCKER = Kind("docker", _docker_leaks, _remove_docker)
SWARM = Kind("swarm", _swarm_leaks, _remove_swarm)
