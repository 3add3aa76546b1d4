"""What this host can do for containers, probed cheaply and without side effects.

``labkit doctor`` prints these facts and :func:`labkit.runtime.default` uses them to pick a
backend, so both always agree on *why* a runtime was (or was not) chosen.
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from labkit.oci.cgroups import CgroupLayout, host_layout
from labkit.paths import is_root

CNI_DIRS = ("/usr/lib/cni", "/opt/cni/bin", "/usr/libexec/cni")


@dataclass
class Check:
    """One line of ``labkit doctor``: a fact, whether it is good news, and why it matters."""

    name: str
    ok: bool
    detail: str
    why: str = ""


def is_linux() -> bool:
    return platform.system() == "Linux"


def cgroup_layout() -> CgroupLayout:
    """This host's cgroups (:func:`labkit.oci.cgroups.host_layout`, read once): v2-only hosts are
    most readers' laptops, v1/hybrid is this CI host."""
    return host_layout()


def crun_needs_unified_unmount() -> bool:
    """crun 1.8 refuses a hybrid layout whose v2 mount has controllers; hiding that mount fixes it."""
    layout = cgroup_layout()
    return layout.mode == "hybrid" and bool(layout.v2_controllers)


def namespaces() -> dict[str, bool]:
    """Namespace kinds this kernel offers (what /proc/self/ns lists)."""
    kinds = ["pid", "mnt", "uts", "ipc", "net", "user", "cgroup"]
    base = Path("/proc/self/ns")
    return {k: (base / k).exists() for k in kinds}


def user_namespaces_allowed() -> bool:
    """Unprivileged user namespaces may be switched off by sysctl; root can always create them."""
    try:
        v = Path("/proc/sys/user/max_user_namespaces").read_text().strip()
        if v == "0":
            return False
    except OSError:
        return False
    try:
        return Path("/proc/sys/kernel/unprivileged_userns_clone").read_text().strip() != "0"
    except OSError:
        return True


def overlayfs() -> bool:
    try:
        return "overlay" in Path("/proc/filesystems").read_text()
    except OSError:
        return False


@functools.cache
def binary_version(binary: str) -> str | None:
    """First line of ``BINARY --version``, or None when it is not installed."""
    path = shutil.which(binary)
    if not path:
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0] if first else path


def docker_reachable(timeout: float = 2.0) -> tuple[bool, str]:
    """Ask the Engine for its version over its socket (no CLI needed). Returns (ok, detail)."""
    sock = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if sock.startswith("unix://") and not os.path.exists(sock[len("unix://"):]):
        return False, f"no Docker socket at {sock[len('unix://'):]} (start dockerd)"
    try:
        import docker  # imported here: the SDK costs ~0.1 s and most commands do not need it

        client = docker.DockerClient(base_url=sock, timeout=timeout)
        try:
            v = client.version()
        finally:
            client.close()
        return True, f"Docker Engine {v.get('Version', '?')} at {sock}"
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"; say why
        return False, f"Docker daemon not reachable at {sock}: {exc.__class__.__name__}"


def cni_plugins() -> tuple[str | None, list[str]]:
    for d in CNI_DIRS:
        p = Path(d)
        if p.is_dir():
            names = sorted(x.name for x in p.iterdir() if os.access(x, os.X_OK))
            if names:
                return d, names
    return None, []


def kubectl() -> str | None:
    found = shutil.which("kubectl")
    if found:
        return found
    sdk = sorted(Path("/usr/lib/google-cloud-sdk/bin").glob("kubectl.1.*"))
    return str(sdk[-1]) if sdk else None


def can_run_real_containers() -> tuple[bool, str]:
    """The common gate of native and oci: Linux, root, namespaces."""
    if not is_linux():
        return False, f"this is {platform.system()}, not Linux: containers need Linux namespaces and cgroups"
    if not is_root() or os.environ.get("LABKIT_PRETEND_NOT_ROOT"):
        return False, "not root: creating namespaces, mounts and cgroups needs root (try sudo)"
    ns = namespaces()
    missing = [k for k in ("pid", "mnt", "uts", "ipc", "net") if not ns.get(k)]
    if missing:
        return False, f"kernel lacks namespaces: {', '.join(missing)}"
    return True, "Linux, root, namespaces present"


def checks() -> list[Check]:
    """Everything ``labkit doctor`` reports, in reading order."""
    out: list[Check] = []
    out.append(Check("linux", is_linux(), f"{platform.system()} {platform.release()}",
                     "namespaces and cgroups are Linux features"))
    root = is_root() and not os.environ.get("LABKIT_PRETEND_NOT_ROOT")
    out.append(Check("root", root, "uid 0" if root else f"uid {os.getuid()}"
                     + (" (LABKIT_PRETEND_NOT_ROOT: labkit acts as a user)" if is_root() else ""),
                     "mounts, namespaces and cgroups need root; otherwise the simulated runtime runs"))
    if is_linux():
        layout = cgroup_layout()
        detail = f"{layout.mode}"
        if layout.v1_controllers:
            detail += f"; v1: {','.join(layout.v1_controllers)}"
        if layout.v2_mount:
            detail += f"; v2 at {layout.v2_mount}: {','.join(layout.v2_controllers) or '(no controllers)'}"
        out.append(Check("cgroups", layout.mode in ("v1", "v2", "hybrid"), detail,
                         "limits on memory, CPU and pids"))
        ns = namespaces()
        out.append(Check("namespaces", all(ns[k] for k in ("pid", "mnt", "uts", "ipc", "net")),
                         " ".join(f"{k}{'+' if v else '-'}" for k, v in ns.items()),
                         "what a container is isolated by"))
        out.append(Check("user namespaces", ns.get("user", False) and user_namespaces_allowed(),
                         "allowed" if user_namespaces_allowed() else "disabled by sysctl",
                         "rootless containers map uid 0 inside to an ordinary user outside"))
        out.append(Check("overlayfs", overlayfs(), "in /proc/filesystems" if overlayfs() else "missing",
                         "image layers shared copy-on-write; without it labkit copies the rootfs"))
        out.append(Check("pivot_root", root, "syscall available (needs root + mount ns)",
                         "switches the root so a container cannot chroot its way out"))
    from labkit import system_parts

    for binary in ("runc", "crun"):
        v = binary_version(binary) if system_parts.which(binary) else None
        detail = v or f"not installed ({system_parts.install_hint(binary)})"
        if binary == "crun" and v and crun_needs_unified_unmount():
            detail += "; hybrid cgroups: labkit runs it with /sys/fs/cgroup/unified unmounted in a private mount ns"
        out.append(Check(binary, v is not None, detail, "an OCI runtime labkit can drive"))
    ok, detail = docker_reachable()
    if not ok and system_parts.which("dockerd") is None:
        detail += f"; dockerd is not installed ({system_parts.install_hint('dockerd')})"
    out.append(Check("docker", ok, detail, "the Docker backend and the Swarm labs; labs 03, 05, 24 skip or fall back"))
    # every other system part: one line per manifest row group, with its package and the labs that fall back
    for r in system_parts.reports():
        if r.name not in ("runc", "crun", "docker"):
            out.append(Check(r.name, r.ok, r.detail, r.why))
    return out
