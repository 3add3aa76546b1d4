"""OCI runtime-spec 1.0 ``config.json``: what a runtime is told to run.

The kubelet never talks to Linux itself: CRI asks a runtime for a container, and the runtime
writes a *bundle* (a root filesystem plus this ``config.json``) and hands it to an OCI runtime
(runc, crun, or labkit's own :mod:`labkit.oci.native`). The same dict produced by
:func:`make_config` is accepted by all three; the tests run it through real runc and crun.

Contract (stable; the runtime engineer builds on it)::

    make_config(args, env=None, cwd="/", hostname=None, rootfs="rootfs", mounts=None,
                namespaces=None, resources=None, capabilities=None, netns_path=None,
                devices=None, readonly_rootfs=False, cgroups_path=None, uid=0, gid=0) -> dict

* ``namespaces``: list of OCI types (default pid, network, ipc, uts, mount); ``netns_path`` makes
  the network namespace a *join* (a pod sandbox's netns) instead of a new one.
* ``resources``: a :class:`labkit.oci.resources.Resources` (memory_bytes, cpu_quota_us,
  cpu_period_us, pids_limit) or None.
* ``mounts``: :class:`labkit.runtime.base.Mount` objects or ready OCI mount dicts; added after
  the defaults (/proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys).
* ``devices``: :class:`labkit.runtime.base.Device` objects (host device files to expose).
* ``cgroups_path`` defaults to ``/labkit/<hostname or "container">``; pass ``/labkit/<id>``.
* ``seccomp``: ``"default"`` (the profile of :mod:`labkit.oci.seccomp`, widened for the
  capabilities given, as Docker does), ``"unconfined"`` or None (no filter), or an OCI
  ``linux.seccomp`` dict used as it is.
* a ``"user"`` entry in ``namespaces`` adds ``uidMappings``/``gidMappings`` (default: container
  0-65535 = host 100000-165535), so root inside is an unprivileged uid outside.
"""

from __future__ import annotations

import os
import stat

from labkit.oci import seccomp as seccomp_profiles
from labkit.oci.capabilities import DEFAULT_CAPABILITIES, normalize

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs a container start ~2 ms
    from typing import Any

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_NAMESPACES = ["pid", "network", "ipc", "uts", "mount"]
MIN_MEMORY_BYTES = 6 * 1024 * 1024  # the same floor Docker enforces

#: the device nodes every container gets (runc's list)
DEFAULT_DEVICES: list[dict[str, Any]] = [
    {"path": "/dev/null", "type": "c", "major": 1, "minor": 3},
    {"path": "/dev/zero", "type": "c", "major": 1, "minor": 5},
    {"path": "/dev/full", "type": "c", "major": 1, "minor": 7},
    {"path": "/dev/random", "type": "c", "major": 1, "minor": 8},
    {"path": "/dev/urandom", "type": "c", "major": 1, "minor": 9},
    {"path": "/dev/tty", "type": "c", "major": 5, "minor": 0},
]

MASKED_PATHS = [
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


class SpecError(ValueError):
    """A container request that cannot become a valid OCI config; the message says why."""


def default_mounts() -> list[dict[str, Any]]:
    """/proc, a tmpfs /dev with pts, shm and mqueue, and a read-only /sys."""
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
    ]


def _mount_dict(m: Any) -> dict[str, Any]:
    if isinstance(m, dict):
        return m
    host = getattr(m, "host_path", None)
    dest = getattr(m, "container_path", None)
    if not host or not dest:
        raise SpecError(f"mount {m!r} needs host_path and container_path")
    if not os.path.isabs(dest):
        raise SpecError(f"mount destination {dest!r} must be an absolute path inside the container")
    if not os.path.exists(host):
        raise SpecError(f"mount source {host!r} does not exist on the host; create it first")
    opts = ["rbind", "rprivate", "ro" if getattr(m, "readonly", False) else "rw"]
    return {"destination": dest, "type": "bind", "source": os.path.abspath(host), "options": opts}


def _device_dict(d: Any) -> dict[str, Any]:
    if isinstance(d, dict):
        return d
    host = d.host_path
    try:
        st = os.stat(host)
    except FileNotFoundError as exc:
        raise SpecError(f"device {host!r} does not exist on this host") from exc
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        raise SpecError(f"{host!r} is not a device file")
    return {"path": d.container_path or host, "type": kind, "major": os.major(st.st_rdev),
            "minor": os.minor(st.st_rdev), "fileMode": stat.S_IMODE(st.st_mode), "uid": 0, "gid": 0,
            "_permissions": getattr(d, "permissions", "rwm")}


def linux_resources(resources: Any, devices: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The ``linux.resources`` block: memory, CPU quota, pids and the device allow-list."""
    out: dict[str, Any] = {}
    allow = [{"allow": False, "access": "rwm"}]
    for dev in DEFAULT_DEVICES + (devices or []):
        allow.append({"allow": True, "type": dev["type"], "major": dev["major"], "minor": dev["minor"],
                      "access": dev.get("_permissions", "rwm")})
    allow.append({"allow": True, "type": "c", "major": 136, "access": "rwm"})  # /dev/pts/*
    allow.append({"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"})  # /dev/ptmx
    out["devices"] = allow
    if resources is None:
        return out
    mem = getattr(resources, "memory_bytes", None)
    if mem is not None:
        mem = int(mem)
        if mem < MIN_MEMORY_BYTES:
            raise SpecError(
                f"memory limit {mem} bytes is too small to start a container "
                f"(minimum {MIN_MEMORY_BYTES // (1024 * 1024)} MiB); ask for more, e.g. --memory 32m")
        out["memory"] = {"limit": mem}  # swap left unset, as Docker does; v1 failcnt then counts hits
    quota = getattr(resources, "cpu_quota_us", None)
    if quota is not None:
        period = int(getattr(resources, "cpu_period_us", 100_000) or 100_000)
        if quota < 1000:
            raise SpecError(f"CPU quota {quota} us is below the kernel's 1000 us floor; ask for --cpus 0.01 or more")
        out["cpu"] = {"quota": int(quota), "period": period}
    pids = getattr(resources, "pids_limit", None)
    if pids is not None:
        if int(pids) < 1:
            raise SpecError("pids limit must be at least 1")
        out["pids"] = {"limit": int(pids)}
    return out


def clean_hostname(name: str) -> str:
    """``name`` as a valid host name (lower case, letters, digits, ``-`` and ``.``; at most 63
    characters): the sandbox's hostname rule, for the CRI path and ``labkit run --rm`` alike."""
    clean = "".join(c if c.isalnum() or c in "-." else "-" for c in name.lower()).strip("-.")
    return (clean or "pod")[:63]


def make_config(
    args: list[str],
    env: dict[str, str] | list[str] | None = None,
    cwd: str = "/",
    hostname: str | None = None,
    rootfs: str = "rootfs",
    mounts: list[Any] | None = None,
    namespaces: list[str] | None = None,
    resources: Any = None,
    capabilities: list[str] | None = None,
    netns_path: str | None = None,
    devices: list[Any] | None = None,
    readonly_rootfs: bool = False,
    cgroups_path: str | None = None,
    uid: int = 0,
    gid: int = 0,
    annotations: dict[str, str] | None = None,
    uid_mappings: list[dict[str, int]] | None = None,
    gid_mappings: list[dict[str, int]] | None = None,
    seccomp: str | dict[str, Any] | None = "default",
) -> dict[str, Any]:
    """Build an OCI runtime-spec ``config.json`` dict that runc, crun and labkit's runtime accept."""
    if not args or not all(isinstance(a, str) for a in args):
        raise SpecError("a container needs a command: args must be a non-empty list of strings")
    if not os.path.isabs(cwd):
        raise SpecError(f"working directory {cwd!r} must be an absolute path")
    if isinstance(env, dict):
        env_list = [f"{k}={v}" for k, v in env.items()]
    else:
        env_list = list(env or [])
    if not any(e.startswith("PATH=") for e in env_list):
        env_list.insert(0, f"PATH={DEFAULT_PATH}")
    caps = [normalize(c) for c in (DEFAULT_CAPABILITIES if capabilities is None else capabilities)]
    ns_types = list(DEFAULT_NAMESPACES if namespaces is None else namespaces)
    ns: list[dict[str, str]] = []
    for t in ns_types:
        if t not in ("pid", "network", "ipc", "uts", "mount", "user", "cgroup"):
            raise SpecError(f"unknown namespace type {t!r}")
        entry = {"type": t}
        if t == "network" and netns_path:
            entry["path"] = netns_path
        ns.append(entry)
    if netns_path and "network" not in ns_types:
        ns.append({"type": "network", "path": netns_path})
    dev_dicts = [_device_dict(d) for d in (devices or [])]
    name = hostname or "container"
    cfg: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": False,
            "user": {"uid": int(uid), "gid": int(gid)},
            "args": list(args),
            "env": env_list,
            "cwd": cwd,
            "capabilities": {k: list(caps) for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": rootfs, "readonly": bool(readonly_rootfs)},
        "hostname": name,
        "mounts": default_mounts() + [_mount_dict(m) for m in (mounts or [])],
        "linux": {
            "cgroupsPath": cgroups_path or f"/labkit/{name}",
            "resources": linux_resources(resources, dev_dicts),
            "namespaces": ns,
            "devices": [{k: v for k, v in d.items() if not k.startswith("_")} for d in dev_dicts],
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }
    if seccomp == "default":
        cfg["linux"]["seccomp"] = seccomp_profiles.default_profile(caps)
    elif isinstance(seccomp, dict):
        cfg["linux"]["seccomp"] = seccomp
    elif seccomp not in (None, "unconfined"):
        raise SpecError(f"seccomp must be 'default', 'unconfined' or an OCI linux.seccomp dict, not {seccomp!r}")
    if "uts" not in ns_types:
        cfg.pop("hostname")
    if "user" in ns_types:
        # root inside = an unprivileged uid range outside (the common 100000+ convention)
        default = [{"containerID": 0, "hostID": 100_000, "size": 65_536}]
        cfg["linux"]["uidMappings"] = list(uid_mappings or default)
        cfg["linux"]["gidMappings"] = list(gid_mappings or uid_mappings or default)
    if annotations:
        cfg["annotations"] = dict(annotations)
    return cfg
