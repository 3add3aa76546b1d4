"""User namespaces for native containers: root inside is an ordinary uid outside.

The config asks for one with a ``user`` namespace and ``linux.uidMappings``/``gidMappings``; the
shim enters it, and the parent writes the maps (:func:`map_ids`) before anything else happens.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from labkit.oci.native.state import NativeError


def check_access(cfg: dict[str, Any], rootfs: Path) -> None:
    """With a user namespace, root inside is an ordinary uid outside: it must be able to walk to
    the root file system, or the first mount fails with a bare "permission denied"."""
    linux = cfg.get("linux") or {}
    if not any(ns.get("type") == "user" for ns in linux.get("namespaces") or []):
        return
    maps = linux.get("uidMappings") or []
    if not maps:
        raise NativeError("a user namespace needs linux.uidMappings (e.g. container 0 = host 100000)")
    host_root = next((m["hostID"] for m in maps if m["containerID"] == 0), None)
    for d in [rootfs, *rootfs.parents]:
        st = d.stat()
        if st.st_mode & 0o001 or (host_root is not None and st.st_uid == host_root and st.st_mode & 0o100):
            continue
        raise NativeError(f"with a user namespace the container's root (host uid {host_root}) cannot enter "
                          f"{d} (mode {oct(st.st_mode & 0o777)}); allow it with `chmod o+x {d}` or move the bundle")


def host_root(cfg: dict[str, Any]) -> tuple[int, int] | None:
    """(host uid, host gid) of the container's root when the config asks for a user namespace."""
    linux = cfg.get("linux") or {}
    if not any(ns.get("type") == "user" for ns in linux.get("namespaces") or []):
        return None
    def host_id(maps: list[dict[str, int]]) -> int:
        return next((m["hostID"] for m in maps if m["containerID"] == 0), 0)
    return host_id(linux.get("uidMappings") or []), host_id(linux.get("gidMappings") or [])



def map_ids(shim: int, linux: dict[str, Any], sync_r: int, go_w: int) -> None:
    """Write the shim's uid/gid maps once it has entered its new user namespace."""
    buf = b""
    while b"U\n" not in buf and b"E" not in buf:
        chunk = os.read(sync_r, 4096)
        if not chunk:
            return  # the shim died; the caller reports it
        buf += chunk
    if b"U\n" not in buf:  # the shim reported an error instead
        text = buf.split(b"E", 1)[1].split(b"\n", 1)[0].decode(errors="replace")
        raise NativeError(text or "the container's shim failed before its user namespace was mapped")
    def fmt(maps: list[dict[str, int]]) -> str:
        return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps)
    try:
        with open(f"/proc/{shim}/uid_map", "w") as f:
            f.write(fmt(linux.get("uidMappings") or []))
        with open(f"/proc/{shim}/gid_map", "w") as f:
            f.write(fmt(linux.get("gidMappings") or []))
    except OSError as exc:
        os.kill(shim, signal.SIGKILL)
        raise NativeError(f"cannot map the user namespace ({exc.strerror}); check uidMappings/gidMappings"
                          ) from exc
    os.write(go_w, b"1")
