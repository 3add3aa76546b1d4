"""An OCI bundle: a directory with ``config.json`` and the root filesystem it names.

Usage::

    b = Bundle.create(dir, config)          # writes dir/config.json
    rootfs = store.prepare_rootfs(image, b.rootfs)   # overlay mounted at dir/rootfs
    ... runc run -b dir ID  |  NativeContainer(dir, ID).run()
    rootfs.unmount(); b.remove()
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.atomicfile import write_atomic


class BundleError(ValueError):
    """A bundle directory that is missing or invalid; the message says what to fix."""


@dataclass
class Bundle:
    path: Path

    @classmethod
    def create(cls, path: str | os.PathLike[str], config: dict[str, Any]) -> Bundle:
        """Write ``config.json`` into ``path`` (created if needed) and return the bundle."""
        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        write_atomic(p / "config.json", json.dumps(config, indent=2))
        b = cls(p)
        b.rootfs.mkdir(parents=True, exist_ok=True)
        return b

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Bundle:
        """An existing bundle; raises :class:`BundleError` when ``config.json`` is missing."""
        p = Path(path)
        if not (p / "config.json").is_file():
            raise BundleError(f"{p} is not an OCI bundle: it has no config.json")
        return cls(p)

    @property
    def config(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / "config.json").read_text())
        except (OSError, ValueError) as exc:
            raise BundleError(f"cannot read {self.path / 'config.json'}: {exc}") from exc

    @property
    def rootfs(self) -> Path:
        """The root filesystem directory (``root.path``; relative paths are inside the bundle)."""
        try:
            root = json.loads((self.path / "config.json").read_text())["root"]["path"]
        except (OSError, ValueError, KeyError):
            root = "rootfs"
        return Path(root) if os.path.isabs(root) else self.path / root

    def remove(self) -> None:
        """Delete the bundle directory (the rootfs must already be unmounted)."""
        if os.path.ismount(self.rootfs):
            raise BundleError(f"{self.rootfs} is still mounted; unmount the root filesystem first")
        shutil.rmtree(self.path, ignore_errors=True)
