"""Built-in image recipes: root file systems made from what this host already has.

No registry is reachable from the book's machines, so images are *built*, not pulled:

* ``busybox``: Debian's ``busybox-static`` ``/bin/busybox`` and a link for every applet it
  lists (``busybox --list-full``), so ``sh``, ``ps``, ``hostname``, ``true`` ... all exist. A
  dynamically linked busybox is copied with its shared libraries.
* without busybox: a few host programs (``sh``, ``ls``, ``cat`` ...) copied with the shared
  libraries ``ldd`` names, so a container still has a shell.

Each recipe fills a directory; :class:`labkit.images.store.ImageStore` turns it into a layer.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from labkit import system_parts

BUSYBOX_CANDIDATES = ["/bin/busybox", "/usr/bin/busybox", "/usr/lib/initramfs-tools/bin/busybox"]
HOST_FALLBACK_PROGRAMS = ["sh", "ls", "cat", "echo", "true", "false", "sleep", "hostname", "id",
                          "mkdir", "rm", "touch", "head", "env", "ps", "mount", "readlink", "stat"]

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


class RecipeError(RuntimeError):
    """A recipe that cannot be built on this host; the message says what to install."""


@dataclass
class Recipe:
    """What a built-in image is made of, and how it runs by default."""

    name: str
    description: str
    cmd: list[str] = field(default_factory=lambda: ["sh"])
    env: list[str] = field(default_factory=lambda: [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
    source: str = ""  # filled by build(): what on the host the files came from


def find_busybox() -> str | None:
    for c in BUSYBOX_CANDIDATES:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return shutil.which("busybox")


def shared_libraries(binary: str) -> list[str]:
    """The shared libraries ``ldd`` says ``binary`` loads (empty for a static binary)."""
    try:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    libs = []
    for line in out.splitlines():
        m = re.search(r"(/\S+)\s+\(0x", line)
        if m and os.path.exists(m.group(1)):
            libs.append(m.group(1))
    return libs


def copy_with_libraries(binary: str, rootfs: Path, dest: str | None = None) -> None:
    """Copy a host program into ``rootfs`` at the same path (or ``dest``), with its libraries."""
    target = rootfs / (dest or binary).lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(os.path.realpath(binary), target)
    for lib in shared_libraries(binary):
        lt = rootfs / lib.lstrip("/")
        if not lt.exists():
            lt.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(os.path.realpath(lib), lt)


def _skeleton(rootfs: Path) -> None:
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys", "root", "var", "home", "run"):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    (rootfs / "tmp").mkdir(exist_ok=True)
    os.chmod(rootfs / "tmp", 0o1777)
    os.chmod(rootfs / "root", 0o700)
    (rootfs / "etc/passwd").write_text(PASSWD)
    (rootfs / "etc/group").write_text(GROUP)


def build_busybox(rootfs: Path) -> Recipe:
    """Fill ``rootfs`` with busybox (or host programs) and return how the image runs."""
    rootfs.mkdir(parents=True, exist_ok=True)
    _skeleton(rootfs)
    bb = find_busybox()
    recipe = Recipe("busybox", "a shell and the usual Unix tools from one busybox binary")
    if bb is not None:
        copy_with_libraries(bb, rootfs, "/bin/busybox")
        try:
            listing = subprocess.run([bb, "--list-full"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RecipeError(f"{bb} --list-full failed: {exc}") from exc
        applets = [a.strip() for a in listing.splitlines() if a.strip()]
        if not applets:  # very old busybox: only --list, put everything in /bin
            short = subprocess.run([bb, "--list"], capture_output=True, text=True, timeout=10).stdout
            applets = ["bin/" + a.strip() for a in short.splitlines() if a.strip()]
        for rel in applets:
            link = rootfs / rel.lstrip("/")
            if link.name == "busybox" or link.exists() or link.is_symlink():
                continue
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink("/bin/busybox", link)
        libs = shared_libraries(bb)
        recipe.source = f"{bb} ({'static' if not libs else 'with ' + str(len(libs)) + ' shared libraries'}), " \
                        f"{len(applets)} applets"
        return recipe
    copied = []
    for prog in HOST_FALLBACK_PROGRAMS:
        path = shutil.which(prog)
        if path:
            copy_with_libraries(path, rootfs, "/bin/" + prog)
            copied.append(prog)
    if "sh" not in copied:
        raise RecipeError("neither busybox nor a host /bin/sh was found; "
                          + system_parts.install_hint("busybox"))
    recipe.source = f"host programs with their shared libraries: {', '.join(copied)}"
    return recipe


RECIPES = {"busybox": build_busybox}
