"""The ``swarm-engines`` kind of ``labkit gc``: swarms whose owning process died (a kill -9, a
crashed notebook), with their engines, containers, mounts, cgroups, namespaces and bridge.

A swarm's folder is ``<state>/swarm/<id>/`` with ``owner.json`` naming the process that made it.
Its processes are found three ways, since none alone sees all of them after dockerd is gone:
the folder in the command line (dockerd, containerd, shims), the node's network namespace
(docker-proxy), and the ``labkit/swarm-<id>-n<i>`` cgroup (the containers' own processes).
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import time
from pathlib import Path

from labkit import paths
from labkit.runtime.gc import Kind, Leak
from labkit.swarm import network

MNT_DETACH = 2
CGROUP_ROOT = Path("/sys/fs/cgroup")


def swarms_dir() -> Path:
    return paths.state_dir() / "swarm"


def owner_alive(folder: Path) -> bool:
    try:
        pid = json.loads((folder / "owner.json").read_text())["pid"]
        os.kill(int(pid), 0)
        return True
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _netns_inode(ns: str) -> int | None:
    try:
        return os.stat(network.NETNS_DIR / ns).st_ino
    except OSError:
        return None


def engine_pids(root: Path, cgroup_tag: str, netns: str | None = None) -> list[int]:
    """Processes of one engine (or, with a swarm's folder and tag prefix, of all its engines)."""
    me, needle = os.getpid(), str(root).encode()
    ino = _netns_inode(netns) if netns else None
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == me:
            continue
        try:
            if (d / "stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                continue  # dead, waiting for its parent to reap it: nothing left to kill
            if needle in (d / "cmdline").read_bytes() or f"/labkit/{cgroup_tag}" in (d / "cgroup").read_text():
                pids.append(int(d.name))
            elif ino is not None and os.stat(d / "ns" / "net").st_ino == ino:
                pids.append(int(d.name))
        except OSError:
            continue
    return pids


def kill_engine_processes(root: Path, cgroup_tag: str, netns: str | None = None, timeout: float = 10) -> None:
    """SIGKILL every process of the engine(s) and wait until they are gone."""
    deadline = time.monotonic() + timeout
    while pids := engine_pids(root, cgroup_tag, netns):
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)


def unmount_below(root: Path) -> None:
    """Detach every mount at or below ``root``, deepest first (overlays, netns files, shm)."""
    libc = ctypes.CDLL(None, use_errno=True)
    prefix = str(root).rstrip("/") + "/"
    for _ in range(3):
        points = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].encode().decode("unicode_escape")
            if point.startswith(prefix):
                points.append(point)
        if not points:
            return
        for point in sorted(points, key=len, reverse=True):
            libc.umount2(point.encode(), MNT_DETACH)


def remove_cgroups(tag_prefix: str) -> None:
    """Remove the (now empty) cgroups ``labkit/<tag_prefix>*`` in every hierarchy."""
    if not CGROUP_ROOT.is_dir():
        return
    for hierarchy in CGROUP_ROOT.iterdir():
        top = hierarchy / "labkit"
        if not top.is_dir():
            continue
        for d in sorted(top.glob(f"{tag_prefix}*"), key=lambda p: p.name):
            for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
                try:
                    sub.rmdir()
                except OSError:
                    pass
            try:
                d.rmdir()
            except OSError:
                pass


def tear_down(folder: Path) -> None:
    """Everything of the swarm in ``folder``: processes, mounts, cgroups, network, files."""
    swarm_id = folder.name
    for node in sorted(folder.glob("n*")):
        kill_engine_processes(node, f"swarm-{swarm_id}-{node.name}", network.netns_name(swarm_id, int(node.name[1:]))
                              if node.name[1:].isdigit() else None)
    kill_engine_processes(folder, f"swarm-{swarm_id}-")
    unmount_below(folder)
    remove_cgroups(f"swarm-{swarm_id}-")
    network.remove_network(swarm_id)
    shutil.rmtree(folder, ignore_errors=True)


def _orphans() -> list[Path]:
    d = swarms_dir()
    if not d.is_dir():
        return []
    return [f for f in sorted(d.iterdir()) if f.is_dir() and not owner_alive(f)]


def _onenode_orphans() -> list[Path]:
    """Work folders of one-node fallback runs whose owner died (swarm mode itself is the
    ``docker-swarm`` marker's business, see :mod:`labkit.runtime.swarm`)."""
    d = paths.state_dir() / "swarm-onenode"
    if not d.is_dir():
        return []
    return [f for f in sorted(d.iterdir()) if f.is_dir() and not owner_alive(f)]


def _leaks() -> list[Leak]:
    return [Leak("swarm-engines", f"{f} (swarm {f.name}: dockerd x{len(list(f.glob('n*')))}, "
                                  f"bridge {network.bridge_name(f.name)})") for f in _orphans()] + [
        Leak("swarm-engines", f"{f} (work files of a one-node swarm run)") for f in _onenode_orphans()]


def _remove() -> None:
    for f in _orphans():
        tear_down(f)
    for f in _onenode_orphans():
        shutil.rmtree(f, ignore_errors=True)


SWARM_ENGINES = Kind("swarm-engines", _leaks, _remove)
