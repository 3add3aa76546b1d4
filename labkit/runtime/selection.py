"""Pick a backend by name, or the best one this host can run — and say why.

"Never a silent fake": :func:`default` returns a runtime whose ``reason`` explains the choice,
e.g. ``"native: Linux, root, namespaces present"`` or ``"simulated: not root: …"``.
"""

from __future__ import annotations

import shutil

from labkit import system_parts
from labkit.errors import LabkitError, Unsupported
from labkit.runtime import host
from labkit.runtime.base import Runtime

NAMES = ("native", "runc", "crun", "oci", "docker", "simulated")


class UnknownRuntime(LabkitError):
    """A runtime name labkit does not know."""


def get(name: str) -> Runtime:
    """The backend called ``name``; raises :class:`Unsupported` (with what to do) if this host can't."""
    key = (name or "").strip().lower()
    if key == "native":
        from labkit.runtime.native import NativeRuntime

        rt: Runtime = NativeRuntime()
    elif key in ("runc", "crun"):
        from labkit.runtime.runc import OCIRuntime

        rt = OCIRuntime(key)
    elif key == "oci":
        binary = "runc" if shutil.which("runc") else "crun" if shutil.which("crun") else None
        if binary is None:
            raise Unsupported(f"no OCI runtime installed: {system_parts.install_hint('runc')} (or crun), or use --runtime native")
        from labkit.runtime.runc import OCIRuntime

        rt = OCIRuntime(binary)
    elif key == "docker":
        from labkit.runtime.dockerengine import DockerRuntime

        rt = DockerRuntime()
    elif key in ("simulated", "sim"):
        from labkit.runtime.simulated import SimulatedRuntime

        rt = SimulatedRuntime()
    elif key in ("hollow", "simulated-hollow"):
        from labkit.runtime.simulated import HollowRuntime

        rt = HollowRuntime()
    else:
        raise UnknownRuntime(f"unknown runtime {name!r}; choose one of: {', '.join(NAMES)}")
    rt.reason = f"{rt.name}: asked for by name ({name})"  # type: ignore[attr-defined]
    return rt


def choose_default() -> tuple[str, str]:
    """(backend name, reason) for the best backend here: native, then runc/crun, docker, simulated."""
    ok, why = host.can_run_real_containers()
    if ok:
        return "native", f"native: {why}; labkit's own runtime runs the containers"
    dok, ddetail = host.docker_reachable(timeout=1.0)
    if dok:
        return "docker", f"docker: {why}; {ddetail} runs the containers" if not ok else f"docker: {ddetail}"
    return "simulated", f"simulated: {why}; no Docker daemon either ({ddetail}), so containers are plain host processes without isolation"


def default() -> Runtime:
    """The best backend this host can run, with a ``reason`` attribute saying why it was chosen."""
    name, reason = choose_default()
    try:
        rt = get(name)
    except Unsupported as exc:
        from labkit.runtime.simulated import SimulatedRuntime

        rt = SimulatedRuntime()
        reason = f"simulated: {name} failed to start ({exc}); containers are plain host processes"
    rt.reason = reason  # type: ignore[attr-defined]
    return rt
