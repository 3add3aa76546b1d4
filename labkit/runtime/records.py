"""Sandbox and container records on disk, so every ``labkit`` process sees the same containers.

A backend keeps one folder per sandbox and per container under
``<state_dir>/runtime/<backend>/``; ``labkit ps`` in one terminal sees what ``labkit run -d`` in
another started, and ``labkit gc`` finds what a killed run left.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from labkit import paths
from labkit.atomicfile import write_atomic


def backend_root(backend: str) -> Path:
    return paths.state_dir() / "runtime" / backend


def new_id() -> str:
    """A 32-hex-digit id; the first 12 are shown, like Docker and crictl do."""
    return uuid.uuid4().hex


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` atomically: readers see the old file or the new one, never half of one."""
    write_atomic(path, json.dumps(data, indent=1, default=str))


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def all_backends() -> list[str]:
    """Backends that have state on this host (without importing any of them)."""
    root = paths.state_dir() / "runtime"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir())


def resolve(folder: Path, prefix: str) -> Path | None:
    """Find a record folder by id prefix (like ``docker ps`` ids); None if absent or ambiguous."""
    if not folder.is_dir() or not prefix:
        return None
    exact = folder / prefix
    if exact.is_dir():
        return exact
    hits = [p for p in folder.iterdir() if p.name.startswith(prefix)]
    return hits[0] if len(hits) == 1 else None
