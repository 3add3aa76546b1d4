"""A pod sandbox for the native and OCI backends: namespaces that outlive any one container.

Kubernetes keeps a pod's network, IPC and hostname in a *sandbox* so that containers can come
and go while the pod keeps its IP. containerd does it with a ``pause`` process; labkit pins the
namespaces with bind mounts instead, so no process has to stay alive:

* the network namespace is ``/var/run/netns/labkit-<id>`` (what ``ip netns`` and CNI plugins use;
  :attr:`PodSandboxStatus.netns_path` points at it);
* the UTS (hostname) and IPC namespaces are nsfs bind mounts in the sandbox's state folder.

Containers then *join* these by path in their ``config.json``.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from labkit.runtime.base import RuntimeError_

NETNS_DIR = Path("/var/run/netns")
NETNS_PREFIX = "labkit-"


@dataclass
class NamespacePaths:
    net: str
    uts: str
    ipc: str


def _run(argv: list[str], what: str) -> None:
    out = subprocess.run(argv, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError_(f"{what} failed: {out.stderr.strip() or out.stdout.strip()} (command: {' '.join(argv)})")


def create_namespaces(sandbox_id: str, folder: Path, hostname: str) -> NamespacePaths:
    """Create and pin net, uts and ipc namespaces; set the hostname; bring loopback up."""
    netns = f"{NETNS_PREFIX}{sandbox_id}"
    folder.mkdir(parents=True, exist_ok=True)
    uts, ipc = folder / "uts", folder / "ipc"
    uts.touch()
    ipc.touch()
    _run(["ip", "netns", "add", netns], "creating network namespace")
    try:
        _run(["unshare", f"--uts={uts}", f"--ipc={ipc}", "hostname", hostname],
             "creating UTS/IPC namespaces")
        _run(["ip", "-n", netns, "link", "set", "lo", "up"], "bringing up loopback")
    except RuntimeError_:
        destroy_namespaces(sandbox_id, folder)
        raise
    return NamespacePaths(net=str(NETNS_DIR / netns), uts=str(uts), ipc=str(ipc))


def _umount(path: Path) -> None:
    if os.path.ismount(path) or _is_nsfs_mount(path):
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _is_nsfs_mount(path: Path) -> bool:
    try:
        text = Path("/proc/self/mounts").read_text()
    except OSError:
        return False
    target = str(path)
    return any(line.split()[1] == target for line in text.splitlines() if len(line.split()) > 1)


def destroy_namespaces(sandbox_id: str, folder: Path) -> None:
    """Unpin everything :func:`create_namespaces` made; safe to call twice."""
    for name in ("uts", "ipc"):
        p = folder / name
        if p.exists():
            _umount(p)
            try:
                p.unlink()
            except OSError:
                pass
    netns = NETNS_DIR / f"{NETNS_PREFIX}{sandbox_id}"
    if netns.exists():
        subprocess.run(["ip", "netns", "del", netns.name], capture_output=True)
