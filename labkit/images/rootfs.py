"""A container's root file system: image layers stacked with overlayfs, plus a writable layer.

The image's layers are read-only *lower* directories, shared by every container of that image;
each container gets its own *upper* directory where writes land (copy-on-write: the first write
to a lower file copies it up). Deleting a lower file leaves a whiteout in the upper directory.
When overlayfs cannot be mounted (not root, or a file system that refuses it) the layers are
copied into a plain directory instead, and :attr:`RootFS.mode` says ``"copy"``.
"""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RootFS:
    """A prepared root file system. ``path`` is what a bundle's ``root.path`` points at."""

    path: Path
    mode: str  # "overlay" or "copy"
    lowerdirs: list[Path] = field(default_factory=list)  # topmost first
    upperdir: Path | None = None
    workdir: Path | None = None
    note: str = ""  # why the fallback was used, for lab output

    def describe(self) -> str:
        if self.mode == "overlay":
            return f"overlayfs: {len(self.lowerdirs)} read-only layer(s) + writable upper dir {self.upperdir}"
        return f"plain copy of the layers ({self.note})"

    def unmount(self) -> None:
        """Unmount (or delete the copy) and remove the writable layer; safe to call twice."""
        from labkit.oci import syscalls

        if self.mode == "overlay":
            if os.path.ismount(self.path):
                try:
                    syscalls.umount2(str(self.path))
                except OSError as exc:
                    if exc.errno in (errno.EBUSY,):
                        syscalls.umount2(str(self.path), syscalls.MNT_DETACH)
                    elif exc.errno not in (errno.EINVAL, errno.ENOENT):
                        raise
            if self.upperdir is not None:
                shutil.rmtree(self.upperdir.parent, ignore_errors=True)
            try:
                self.path.rmdir()
            except OSError:
                pass
        else:
            shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> RootFS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unmount()


def mount_overlay(lowerdirs: list[Path], dest: Path, scratch: Path) -> RootFS:
    """Mount ``lowerdirs`` (topmost first) with a fresh upper/work dir in ``scratch`` at ``dest``."""
    from labkit.oci import syscalls

    upper, work = scratch / "upper", scratch / "work"
    upper.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    dest.mkdir(parents=True, exist_ok=True)
    opts = f"lowerdir={':'.join(str(p) for p in lowerdirs)},upperdir={upper},workdir={work}"
    syscalls.mount("overlay", str(dest), "overlay", 0, opts)
    return RootFS(dest, "overlay", list(lowerdirs), upper, work)
