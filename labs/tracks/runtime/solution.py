"""The reference solution of the "write a container runtime" track (the skeleton, filled in)."""

from __future__ import annotations

import os

from labkit.oci import capabilities as caps
from labkit.oci import syscalls as sc


def create_namespaces() -> None:
    """Step 1: new UTS, mount, IPC, network and PID namespaces (PID: for the next child)."""
    sc.unshare(sc.CLONE_NEWUTS | sc.CLONE_NEWNS | sc.CLONE_NEWIPC | sc.CLONE_NEWNET | sc.CLONE_NEWPID)


def set_hostname(name: str) -> None:
    """Step 2: the hostname of this UTS namespace."""
    sc.sethostname(name)


def mount_rootfs(lowerdirs: list[str], upperdir: str, workdir: str, target: str) -> None:
    """Step 3: the image's layers below, a writable upper directory on top."""
    options = f"lowerdir={':'.join(lowerdirs)},upperdir={upperdir},workdir={workdir}"
    sc.mount("overlay", target, "overlay", 0, options)


def pivot_into(new_root: str) -> None:
    """Step 4: the image becomes "/", the old root is stacked on it and then detached."""
    os.chdir(new_root)
    sc.pivot_root(".", ".")
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")


def mount_proc() -> None:
    """Step 5: a proc file system that shows this PID namespace."""
    os.makedirs("/proc", exist_ok=True)
    sc.mount("proc", "/proc", "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)


def join_cgroup(cgroup_dir: str, pid: int) -> None:
    """Step 6: a process joins a cgroup when its PID is written to cgroup.procs."""
    with open(os.path.join(cgroup_dir, "cgroup.procs"), "w") as f:
        f.write(str(pid))


def set_memory_limit(cgroup_dir: str, limit_bytes: int) -> None:
    """Step 7: memory.max on cgroup v2, memory.limit_in_bytes on v1."""
    name = "memory.max" if os.path.exists(os.path.join(cgroup_dir, "memory.max")) else "memory.limit_in_bytes"
    with open(os.path.join(cgroup_dir, name), "w") as f:
        f.write(str(limit_bytes))


def drop_capabilities(keep: list[str]) -> None:
    """Step 8: shrink the bounding set (what exec can give back), then the current sets."""
    kept = caps.mask(keep)
    for bit in range(caps.last_cap() + 1):
        if not kept >> bit & 1:
            sc.prctl(sc.PR_CAPBSET_DROP, bit)
    sc.capset(kept, kept, 0)
