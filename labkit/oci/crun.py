"""Running the real OCI runtimes (runc, crun) on the same bundles labkit writes.

crun 1.8 refuses a *hybrid* cgroup host ("cgroups in hybrid mode not supported") when the v2
mount at ``/sys/fs/cgroup/unified`` is present. Inside a private mount namespace that mount can
be removed without touching the host, and then crun treats the host as plain cgroup v1.
:func:`command` builds that wrapper only when it is needed.
"""

from __future__ import annotations

import shutil

from labkit import system_parts
from labkit.oci.cgroups import detect_layout

_WRAP = 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"'


def needs_unified_unmount() -> bool:
    """True when this host is hybrid (v1 controllers plus a separate v2 mount)."""
    lay = detect_layout()
    return lay.mode == "hybrid" and lay.v2 is not None and str(lay.v2) != "/sys/fs/cgroup"


def command(binary: str, args: list[str], root: str | None = None) -> list[str]:
    """The argv that runs ``binary`` (runc or crun) with ``args`` on this host."""
    path = shutil.which(binary)
    if path is None:
        raise FileNotFoundError(system_parts.not_installed(binary))
    argv = [path] + (["--root", root] if root else []) + list(args)
    if binary == "crun" and needs_unified_unmount():
        unshare = shutil.which("unshare")
        if unshare is None:
            raise FileNotFoundError("crun needs 'unshare' (util-linux) on this hybrid cgroup host")
        return [unshare, "-m", "--propagation", "private", "sh", "-c", _WRAP, "sh"] + argv
    return argv
