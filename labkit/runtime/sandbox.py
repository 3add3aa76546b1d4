"""A pod sandbox for the native and OCI backends: namespaces that outlive any one container.

Kubernetes keeps a pod's network, IPC and hostname in a *sandbox* so that containers can come
and go while the pod keeps its IP. containerd does it with a ``pause`` process; labkit pins the
namespaces with bind mounts instead, so no process has to stay alive:

* the network namespace is ``/var/run/netns/labkit-<id>`` (what ``ip netns`` and CNI plugins use;
  :attr:`PodSandboxStatus.netns_path` points at it);
* the UTS (hostname) and IPC namespaces are nsfs bind mounts in the sandbox's state folder.

Containers then *join* these by path in their ``config.json``.

No ``ip``/``unshare``/``umount`` subprocesses (six of them cost the CRI path ~30 ms): a short-lived
thread does what ``ip netns add`` and ``unshare --uts --ipc`` do. net, UTS and IPC namespaces
belong to a thread, not to the whole process, so the thread unshares them, sets the hostname,
brings loopback up and bind-mounts its own ``/proc/thread-self/ns/*`` onto the pin files; when
it ends, the mounts keep the namespaces alive and the rest of the process never left the host's.
"""

from __future__ import annotations

import errno
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from labkit.errors import LabkitError

NETNS_DIR = Path("/var/run/netns")
NETNS_PREFIX = "labkit-"


@dataclass
class NamespacePaths:
    net: str
    uts: str
    ipc: str


def _shared_netns_dir() -> None:
    """What ``ip netns add`` does first: /var/run/netns exists and is a shared mount, so a pin made
    here shows in every mount namespace that was copied from the host's."""
    from labkit.oci import syscalls as sc

    NETNS_DIR.mkdir(parents=True, exist_ok=True)
    d = str(NETNS_DIR)
    try:
        sc.mount(None, d, None, sc.MS_SHARED | sc.MS_REC)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # EINVAL: not a mount point yet
            raise
        sc.mount(d, d, None, sc.MS_BIND | sc.MS_REC)
        sc.mount(None, d, None, sc.MS_SHARED | sc.MS_REC)


def _pin_in_thread(netns: Path, uts: Path, ipc: Path, hostname: str) -> None:
    """New net, UTS and IPC namespaces made by a thread of their own and pinned by bind mounts."""
    from labkit.oci import syscalls as sc

    errors: list[str] = []

    def work() -> None:
        step = "creating network namespace"
        try:
            sc.unshare(sc.CLONE_NEWNET | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC)
            own = "/proc/thread-self/ns/{}"
            sc.mount(own.format("net"), str(netns), None, sc.MS_BIND)
            step = "creating UTS/IPC namespaces"
            sc.mount(own.format("uts"), str(uts), None, sc.MS_BIND)
            sc.mount(own.format("ipc"), str(ipc), None, sc.MS_BIND)
            sc.sethostname(hostname)
            step = "bringing up loopback"
            sc.link_up("lo")
        except OSError as exc:
            errors.append(f"{step} failed: {exc}")

    t = threading.Thread(target=work, name=f"labkit-sandbox-{netns.name}", daemon=True)
    t.start()
    t.join()  # the thread ends here: its namespaces live on in the mounts
    if errors:
        raise LabkitError(errors[0])


def create_namespaces(sandbox_id: str, folder: Path, hostname: str) -> NamespacePaths:
    """Create and pin net, uts and ipc namespaces; set the hostname; bring loopback up."""
    netns = f"{NETNS_PREFIX}{sandbox_id}"
    folder.mkdir(parents=True, exist_ok=True)
    uts, ipc = folder / "uts", folder / "ipc"
    uts.touch()
    ipc.touch()
    net = NETNS_DIR / netns
    try:
        _shared_netns_dir()
        os.close(os.open(net, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    except OSError as exc:
        raise LabkitError(f"creating network namespace failed: cannot create {net}: {exc.strerror}") from exc
    try:
        _pin_in_thread(net, uts, ipc, hostname)
    except LabkitError:
        destroy_namespaces(sandbox_id, folder)
        raise
    return NamespacePaths(net=str(net), uts=str(uts), ipc=str(ipc))


def _umount(path: Path) -> None:
    """Lazy unmount of a pin (``umount -l``); nothing mounted there is fine."""
    from labkit.oci import syscalls as sc

    try:
        sc.umount2(str(path), sc.MNT_DETACH)
    except OSError:
        pass


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
        _umount(netns)  # what ``ip netns del`` does: unmount, then remove the file
        try:
            netns.unlink()
        except OSError:
            pass
