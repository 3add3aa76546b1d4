"""Docker swarm mode that labkit turned on, and only that: marked so ``labkit gc`` can turn it off.

Chapter 5 puts the Docker Engine into swarm mode for a side-by-side demo and leaves it again
at the end. A run killed in between would leave the host a swarm manager. The chapter calls
:func:`claim` right after ``docker swarm init`` and :func:`release` after ``docker swarm leave``;
the marker file in between is the only thing that lets ``labkit gc`` leave a swarm, so a swarm
someone else made is never touched.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from labkit import paths

#: the label chapter 5 puts on its services (any value); gc removes only these
SERVICE_LABEL = "labkit"


def marker() -> Path:
    return paths.state_dir() / "docker-swarm-by-labkit.json"


def claim(created_gwbridge: bool = False) -> None:
    """Record that this process just turned swarm mode on (and whether it made ``docker_gwbridge``)."""
    marker().write_text(json.dumps({"pid": os.getpid(), "created_gwbridge": created_gwbridge}))


def release() -> None:
    """Swarm mode is off again: nothing for gc to do."""
    marker().unlink(missing_ok=True)


def _owner() -> dict | None:
    try:
        return json.loads(marker().read_text())
    except (OSError, ValueError):
        return None if not marker().exists() else {}


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _docker(*args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(["docker", *args], 1, "", str(exc))


def _services() -> list[str]:
    out = _docker("service", "ls", "-q", "--filter", f"label={SERVICE_LABEL}")
    return out.stdout.split() if out.returncode == 0 else []


def leftover() -> list[str]:
    """What gc would remove: labkit's swarm services and swarm mode itself, when labkit's marker
    says labkit turned it on and the process that did so is gone (a live demo is left alone)."""
    owner = _owner()
    if owner is None or _alive(owner.get("pid")):
        return []
    return [f"service {s}" for s in _services()] + ["swarm mode (docker swarm leave --force)"]


def remove() -> None:
    """Remove labkit's swarm services, leave swarm mode, and drop the marker (see :func:`leftover`)."""
    owner = _owner()
    if owner is None or _alive(owner.get("pid")):
        return
    services = _services()
    if services:
        _docker("service", "rm", *services)
    left = _docker("swarm", "leave", "--force")
    if left.returncode != 0 and "not part of a swarm" not in left.stderr:
        return  # no Docker Engine right now: keep the marker, the next gc tries again
    if owner.get("created_gwbridge"):
        _docker("network", "rm", "docker_gwbridge")
    release()


def docker(*args: str) -> str:
    """Run the docker CLI; its stdout, stripped (raises CalledProcessError with Docker's message)."""
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout.strip()


class one_node_swarm:  # noqa: N801 - used as ``with one_node_swarm():``
    """Swarm mode on the local Docker Engine, on loopback, for a ``with`` block.

    A swarm that was already there is used and left alone; one made here is left at the end
    (and claimed in between, so ``labkit gc`` can leave it after a killed run).
    """

    def __enter__(self) -> one_node_swarm:
        self.joined = docker("info", "--format", "{{.Swarm.LocalNodeState}}") == "inactive"
        self.had_gwbridge = "docker_gwbridge" in docker("network", "ls", "--format", "{{.Name}}").split()
        if self.joined:
            docker("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:0")
            claim(created_gwbridge=not self.had_gwbridge)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.joined:
            subprocess.run(["docker", "swarm", "leave", "--force"], capture_output=True)
            if not self.had_gwbridge:
                subprocess.run(["docker", "network", "rm", "docker_gwbridge"], capture_output=True)
            release()
