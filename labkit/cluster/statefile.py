"""The cluster's state file, ``<state>/clusters/<name>/cluster.json``: how a later command finds it.

``labkit cluster status`` and ``labkit cluster down`` run in other processes than the one that
started the cluster; they read its API server, kubeconfig and component pids from here, and
the clean-up reads it to tell a dead notebook's cluster from a live one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from labkit import paths
from labkit.cluster.supervisor import ClusterError, Component

STATE_FILE = "cluster.json"


def clusters_dir() -> Path:
    p = paths.state_dir() / "clusters"
    p.mkdir(parents=True, exist_ok=True)
    return p


def save(folder: Path, info: dict, components: dict[str, Component]) -> None:
    """Write what a later command needs to find a cluster (``info``) and its component processes."""
    info = {**info, "owner_pid": os.getpid(),
            "components": {n: {"pid": x.pid, "cmd": x.cmd, "log": x.log} for n, x in components.items()}}
    (folder / STATE_FILE).write_text(json.dumps(info, indent=1))


def read(name: str) -> dict:
    """The state of the cluster ``labkit cluster up`` started as ``name``."""
    f = clusters_dir() / name / STATE_FILE
    if not f.exists():
        raise ClusterError(f"no cluster named {name!r} is up (looked in {f.parent}); start one with 'labkit cluster up'")
    return json.loads(f.read_text())


def components(info: dict) -> dict[str, Component]:
    """The component processes a state file names (no handle on them: only their pids)."""
    return {n: Component(n, d.get("cmd", []), d.get("log", ""), d.get("pid"))
            for n, d in (info.get("components") or {}).items()}


def all_states() -> list[tuple[Path, dict]]:
    """Every cluster folder with a readable state file, and that state."""
    out = []
    for info_file in sorted(clusters_dir().glob(f"*/{STATE_FILE}")):
        try:
            out.append((info_file.parent, json.loads(info_file.read_text())))
        except (OSError, ValueError):
            continue
    return out
