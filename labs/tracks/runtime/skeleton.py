"""Your own container runtime, one step at a time.

Fill in one function per step, top to bottom; after each, run its check in the lab
(``check("30.N")``). labkit's runner (``labkit.practice.buildruntime``) does the plumbing around
your functions: it calls step 1 in a forked process, forks the container's PID 1, calls steps
2-5 and 8 in it, steps 6-7 from the host, and finally execs the program (``sleep``).

The system calls you need are in ``labkit.oci.syscalls`` (Python 3.11 has no ``os.unshare``,
``mount`` or ``pivot_root``): ``sc.unshare(flags)``, ``sc.mount(source, target, fstype, flags,
data)``, ``sc.umount2(target, flags)``, ``sc.pivot_root(new_root, put_old)``,
``sc.sethostname(name)``, ``sc.prctl(option, arg)``, ``sc.capset(effective, permitted,
inheritable)``, and the constants ``sc.CLONE_NEW*``, ``sc.MS_*``, ``sc.MNT_DETACH``,
``sc.PR_CAPBSET_DROP``. Capability names and numbers are in ``labkit.oci.capabilities``.
"""

from __future__ import annotations

import os  # noqa: F401 - for steps 4 to 7

from labkit.oci import capabilities as caps  # noqa: F401 - for step 8
from labkit.oci import syscalls as sc  # noqa: F401 - for every step


def create_namespaces() -> None:
    """Step 1: move this process into new UTS, mount, IPC, network and PID namespaces.

    One ``unshare`` call with the ``CLONE_NEW*`` flags ORed together. A new PID namespace holds
    this process's *next child*, not the process itself: the runner forks PID 1 right after.
    """
    raise NotImplementedError("TODO step 1: sc.unshare(...) with five CLONE_NEW* flags")


def set_hostname(name: str) -> None:
    """Step 2: give the container its own hostname (its UTS namespace is its own now)."""
    raise NotImplementedError("TODO step 2: set the hostname to name")


def mount_rootfs(lowerdirs: list[str], upperdir: str, workdir: str, target: str) -> None:
    """Step 3: mount the image at ``target`` with overlayfs.

    ``lowerdirs`` are the image's read-only layers, topmost first; writes go to ``upperdir``;
    overlayfs needs an empty ``workdir`` on the same file system. The options are one string:
    ``lowerdir=A:B,upperdir=U,workdir=W``.
    """
    raise NotImplementedError("TODO step 3: mount an 'overlay' file system at target")


def pivot_into(new_root: str) -> None:
    """Step 4: make ``new_root`` (a mount point) this mount namespace's root, and drop the old one.

    ``chdir`` into it, ``pivot_root(".", ".")`` stacks the old root on top of the new one, a lazy
    unmount (``MNT_DETACH``) of "." removes the old root, and ``chdir("/")`` lands on the image.
    """
    raise NotImplementedError("TODO step 4: chdir, pivot_root, umount2 the old root, chdir('/')")


def mount_proc() -> None:
    """Step 5: mount a fresh ``proc`` at ``/proc``, so ``ps`` sees this PID namespace only."""
    raise NotImplementedError("TODO step 5: mount proc on /proc")


def join_cgroup(cgroup_dir: str, pid: int) -> None:
    """Step 6 (runs on the host): put process ``pid`` into the cgroup at ``cgroup_dir``.

    A cgroup is a directory of the cgroup file system; a process joins it when its PID is
    written to the directory's ``cgroup.procs`` file.
    """
    raise NotImplementedError("TODO step 6: write pid to cgroup.procs")


def set_memory_limit(cgroup_dir: str, limit_bytes: int) -> None:
    """Step 7 (runs on the host): cap the cgroup's memory at ``limit_bytes``.

    cgroup v2 calls the file ``memory.max``; cgroup v1 calls it ``memory.limit_in_bytes``. Write
    to whichever exists in ``cgroup_dir``.
    """
    raise NotImplementedError("TODO step 7: write the limit to the cgroup's memory limit file")


def drop_capabilities(keep: list[str]) -> None:
    """Step 8: keep only the capabilities named in ``keep`` (e.g. "CAP_CHOWN"), for good.

    Root regains every capability in its *bounding set* when it execs a program, so drop each
    capability that is not kept from the bounding set (``PR_CAPBSET_DROP``, numbers up to
    ``caps.last_cap()``), then set the effective and permitted sets to the kept ones (``capset``).
    """
    raise NotImplementedError("TODO step 8: drop the bounding set, then capset")

