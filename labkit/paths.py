"""Where labkit keeps its state on this host.

Everything labkit creates carries the ``labkit`` name so that ``labkit gc`` can find and remove
what a killed run left behind:

* state and runtime files under :func:`state_dir` (``/run/labkit`` as root)
* images under :func:`images_dir` (``/var/lib/labkit/images`` as root)
* cgroups under ``<controller>/labkit/...`` (v1) or ``/sys/fs/cgroup/labkit/...`` (v2)
* network namespaces named ``labkit-*``; host interfaces and bridges named ``lk*``
"""

from __future__ import annotations

import os
from pathlib import Path

PREFIX = "labkit"
IFACE_PREFIX = "lk"  # interface names are limited to 15 characters


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _base(env: str, root_default: str, user_default: str) -> Path:
    if os.environ.get(env):
        return Path(os.environ[env])
    if is_root():
        return Path(root_default)
    return Path(os.path.expanduser(user_default))


def state_dir() -> Path:
    """Volatile state: container bundles, sockets, pid files. ``$LABKIT_STATE`` overrides."""
    p = _base("LABKIT_STATE", "/run/labkit", "~/.local/state/labkit")
    p.mkdir(parents=True, exist_ok=True)
    return p


def images_dir() -> Path:
    """The local OCI image store. ``$LABKIT_IMAGES`` overrides."""
    p = _base("LABKIT_IMAGES", "/var/lib/labkit/images", "~/.cache/labkit/images")
    p.mkdir(parents=True, exist_ok=True)
    return p


def data_dir() -> Path:
    """Persistent data: the sqlite store, etcd data dirs, CSI volumes. ``$LABKIT_DATA`` overrides."""
    p = _base("LABKIT_DATA", "/var/lib/labkit/data", "~/.local/share/labkit")
    p.mkdir(parents=True, exist_ok=True)
    return p
