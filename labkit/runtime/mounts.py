"""Find and remove mounts below a folder (overlay roots, pinned namespaces) before deleting it.

Deleting a folder that still has an overlay mounted inside would reach through the mount; so
every removal unmounts first, deepest mount first, and refuses to delete if any remain.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def _unescape(field: str) -> str:
    # /proc/self/mounts escapes space, tab, newline and backslash as octal
    return (field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")
            .replace("\\134", "\\"))


def all_mounts() -> list[tuple[str, str]]:
    """(mount point, filesystem type) for every mount this process sees."""
    try:
        text = Path("/proc/self/mounts").read_text()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            out.append((_unescape(parts[1]), parts[2]))
    return out


def mounted_under(folder: Path | str) -> list[str]:
    base = str(Path(folder).resolve()) if Path(folder).exists() else str(folder)
    return [m for m, _ in all_mounts() if m == base or m.startswith(base.rstrip("/") + "/")]


def unmount(path: str) -> bool:
    """Detach one mount; True when it is gone."""
    try:
        from labkit.oci import syscalls

        syscalls.umount2(path, syscalls.MNT_DETACH)
        return True
    except (OSError, ImportError):
        return subprocess.run(["umount", "-l", path], capture_output=True).returncode == 0


def unmount_under(folder: Path | str) -> list[str]:
    """Unmount everything at or below ``folder``, deepest first; return what was unmounted."""
    done = []
    for _ in range(3):  # stacked mounts on one point need more than one pass
        found = sorted(set(mounted_under(folder)), key=len, reverse=True)
        if not found:
            break
        for m in found:
            if unmount(m):
                done.append(m)
    return done
