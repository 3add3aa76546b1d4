"""Take a class down, whether its server stops politely (``labkit class down``) or was killed
(``labkit gc``'s ``classes`` kind): the server, the cluster and everything it ran, the tokens'
kubeconfigs and handouts. The gradebook stays: it is the teacher's record."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import time
from pathlib import Path

from labkit.classroom import state
from labkit.runtime.gc import Kind, Leak

log = logging.getLogger(__name__)

STALE_START_SECONDS = 600  # a spec with no server after this long: `class up` died while starting


def _stop_cluster(name: str) -> None:
    from labkit.cluster import Cluster, ClusterError, clusters_dir

    cname = state.cluster_name(name)
    if not (clusters_dir() / cname).exists():
        return
    try:
        c = Cluster.load(cname)
    except (ClusterError, ValueError, KeyError, OSError) as exc:
        log.warning("class %s: its cluster's state is unreadable (%s); removing the folder", name, exc)
        shutil.rmtree(clusters_dir() / cname, ignore_errors=True)
        return
    c.keep_state = False
    c.stop()


def teardown(name: str, info: dict | None = None) -> str | None:
    """Remove class ``name`` entirely; returns the gradebook's path when one is kept."""
    if info is None:
        try:
            info = state.read(name)
        except (state.ClassError, ValueError):
            info = {}
    if info and not state.stop_server(info):
        try:
            os.kill(int(info["pid"]), signal.SIGKILL)
        except (OSError, KeyError, TypeError, ValueError):
            pass
        time.sleep(0.2)
    _stop_cluster(name)
    folder = info.get("dir") if info else None
    if not folder:
        try:
            import json

            folder = json.loads((state.folder(name) / state.SPEC_FILE).read_text()).get("dir")
        except (OSError, ValueError):
            folder = None
    kept = None
    if folder:
        d = Path(folder)
        for sub in ("kubeconfigs", "handouts", "work"):
            shutil.rmtree(d / sub, ignore_errors=True)
        for f in ("handout.html", "teacher.kubeconfig", "ca.crt", "gradebook.lock"):
            (d / f).unlink(missing_ok=True)
        if (d / "gradebook.csv").exists():
            kept = str(d / "gradebook.csv")
        else:
            try:
                d.rmdir()
            except OSError:
                pass
    shutil.rmtree(state.folder(name), ignore_errors=True)
    return kept


def stale_classes() -> list[str]:
    """Classes whose server is gone (killed, or its machine rebooted) but whose state is still here."""
    out = []
    for f in sorted(state.classes_dir().iterdir()) if state.classes_dir().is_dir() else []:
        if not f.is_dir():
            continue
        try:
            info = state.read(f.name)
        except (state.ClassError, ValueError):
            spec = f / state.SPEC_FILE
            if spec.exists() and time.time() - spec.stat().st_mtime < STALE_START_SECONDS:
                continue  # `class up` is still starting it
            out.append(f.name)
            continue
        if not state.server_alive(info):
            out.append(f.name)
    return out


def _leaks() -> list[Leak]:
    return [Leak("classes", str(state.folder(n))) for n in stale_classes()]


def _remove() -> None:
    for n in stale_classes():
        teardown(n)


CLASSES = Kind("classes", _leaks, _remove)
