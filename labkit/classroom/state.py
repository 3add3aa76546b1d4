"""A class's state file, ``<state>/classes/<name>/class.json``: how ``labkit class status|check|down``
and ``labkit gc`` find the class server, its cluster, its students and its files."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from labkit import paths
from labkit.atomicfile import write_atomic
from labkit.classroom.roster import Student

STATE_FILE = "class.json"
SPEC_FILE = "spec.json"


class ClassError(Exception):
    """No such class, or it could not start (the message says what to do)."""


def classes_dir() -> Path:
    p = paths.state_dir() / "classes"
    p.mkdir(parents=True, exist_ok=True)
    return p


def folder(name: str) -> Path:
    return classes_dir() / name


def cluster_name(name: str) -> str:
    """The name of the class's cluster (its folder under ``<state>/clusters``)."""
    return f"class-{name}"


def save(name: str, info: dict) -> None:
    f = folder(name)
    f.mkdir(parents=True, exist_ok=True)
    write_atomic(f / STATE_FILE, json.dumps(info, indent=1))


def read(name: str) -> dict:
    f = folder(name) / STATE_FILE
    if not f.exists():
        raise ClassError(f"no class named {name!r} is up (looked in {f.parent}); start one with "
                         "'labkit class up --students N'")
    return json.loads(f.read_text())


def all_states() -> list[tuple[Path, dict]]:
    out = []
    for f in sorted(classes_dir().glob(f"*/{STATE_FILE}")):
        try:
            out.append((f.parent, json.loads(f.read_text())))
        except (OSError, ValueError):
            continue
    return out


def students(info: dict) -> list[Student]:
    return [Student(s["name"], s["size"]) for s in info["students"]]


def server_alive(info: dict) -> bool:
    pid = info.get("pid")
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"labkit.classroom.server" in cmdline


def stop_server(info: dict, timeout: float = 60.0) -> bool:
    """SIGTERM the class server (it stops its cluster) and wait for it; True once it is gone."""
    if not server_alive(info):
        return True
    try:
        os.kill(int(info["pid"]), signal.SIGTERM)
    except OSError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server_alive(info):
            return True
        time.sleep(0.1)
    return False
