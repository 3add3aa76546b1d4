"""Leftover mounts: container roots and pinned namespaces under labkit's state folder."""

from __future__ import annotations

import os
import re
from pathlib import Path

from labkit import paths
from labkit.runtime import mounts
from labkit.runtime.gc import DEFAULT_STATE, Kind, Leak

# --- mounts ------------------------------------------------------------------------
# a mount inside some labkit state folder: <state>/runtime/<backend>/<containers|sandboxes|state>/...
_IN_STATE = re.compile(r"^(.*)/runtime/[^/]+/(?:containers|sandboxes|state)/")


def _is_default_state(base: str) -> bool:
    """gc for the default state folder also sweeps labkit-named overlay and nsfs mounts elsewhere
    (what killed labs and runs left); gc for a private ``LABKIT_STATE`` takes only its own."""
    return os.path.realpath(base) == os.path.realpath(DEFAULT_STATE)


def _own_netns(base: str) -> set[str]:
    """The pinned network namespaces of this state folder's pod sandboxes (``labkit-<id>``)."""
    from labkit.runtime import sandbox

    out: set[str] = set()
    runtime = Path(base) / "runtime"
    for folder in runtime.glob("*/sandboxes/*") if runtime.is_dir() else []:
        out.add(f"{sandbox.NETNS_PREFIX}{folder.name}")
    return out


def _mount_leaks() -> list[Leak]:
    """Mounts that belong to the state folder gc runs for (``LABKIT_STATE``, else the default).

    Another state folder's mounts are never taken: a test or lab with its own ``LABKIT_STATE``
    runs gc while other runs' containers are alive, and unmounting their roots or pinned
    namespaces would break them."""
    base = str(paths.state_dir())
    real = os.path.realpath(base)
    found = mounts.mounted_under(base)
    wide = _is_default_state(base)
    netns = set() if wide else _own_netns(base)
    for m, fs in mounts.all_mounts():
        if fs not in ("overlay", "nsfs") or m in found:
            continue
        if wide:
            other = _IN_STATE.match(m)
            if "/labkit" in m and (other is None or os.path.realpath(other.group(1) or "/") == real):
                found.append(m)
        elif fs == "nsfs" and os.path.basename(m) in netns and os.path.dirname(m) in ("/run/netns", "/var/run/netns"):
            found.append(m)
    return [Leak("mounts", m) for m in found]


def _remove_mounts() -> None:
    for leak in sorted(_mount_leaks(), key=lambda x: len(x.what), reverse=True):
        mounts.unmount(leak.what)


MOUNTS = Kind("mounts", _mount_leaks, _remove_mounts)
