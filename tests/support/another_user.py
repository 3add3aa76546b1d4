"""Run labkit as another user, wherever the clone sits.

A clone in ``/root`` or in a ``mktemp -d`` folder is mode 0700: another user (``nobody``, a throwaway
learner) cannot read it, nor the ``.venv`` inside it. These helpers copy what that user needs to a
folder everyone can read: labkit's source, and when asked the whole virtual environment (hard links,
so it costs seconds, not half a gigabyte), with an interpreter that user may run.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # tests/support/ -> the clone


def as_user(user: str = "nobody", group: str = "nogroup") -> list[str]:
    """The argv prefix that runs a command as ``user`` with no supplementary groups."""
    return ["setpriv", f"--reuid={user}", f"--regid={group}", "--clear-groups"]


def _runs_as(python: str, user: str, group: str) -> bool:
    try:
        # through env and a bare environment: the way the user's own processes start programs
        return subprocess.run([*as_user(user, group), "env", python, "-I", "-c", "pass"], capture_output=True,
                              timeout=60, cwd="/", env={"PATH": "/usr/bin:/bin"}).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def interpreter(user: str = "nobody", group: str = "nogroup") -> str:
    """A Python of this minor version that ``user`` may run (the venv's own may sit in an unreadable folder).

    Good enough for labkit alone; a whole book build needs this very interpreter: see :func:`base_copy`."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [os.path.realpath(sys.executable), getattr(sys, "_base_executable", ""),
                  shutil.which(version, path="/usr/local/bin:/usr/bin:/bin") or ""]
    for c in dict.fromkeys(c for c in candidates if c):
        if _runs_as(c, user, group):
            return c
    raise RuntimeError(f"no {version} that {user} may run (tried {candidates})")


def base_copy(dest: Path, user: str, group: str) -> tuple[str, dict[str, str]]:
    """This exact interpreter for ``user``: itself when the user may run it, else a hard-linked copy.

    The copy holds the interpreter, its shared library and the standard library (not the base's
    site-packages) and needs LD_LIBRARY_PATH (returned) because its RUNPATH names the old folder.
    The same patch release matters: pinned packages are installed for this interpreter, and a
    package may refuse another (soupsieve 3.x needs 3.11.5 and fails on Debian 12's 3.11.2)."""
    exact = os.path.realpath(sys.executable)
    if _runs_as(exact, user, group):
        return exact, {}
    base = Path(sys.base_prefix)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    (dest / "bin").mkdir(parents=True)
    (dest / "lib").mkdir()
    os.link(exact, dest / "bin" / version)
    for lib in base.glob("lib/libpython*"):
        if lib.is_symlink():
            (dest / "lib" / lib.name).symlink_to(os.readlink(lib))
        else:
            os.link(lib, dest / "lib" / lib.name)
    shutil.copytree(base / "lib" / version, dest / "lib" / version, copy_function=os.link,
                    ignore=shutil.ignore_patterns("site-packages", "__pycache__", "test"))
    readable(dest)
    env = {"LD_LIBRARY_PATH": str(dest / "lib")}
    return str(dest / "bin" / version), env


def readable(path: Path) -> Path:
    """Make ``path`` and everything under it readable (and folders enterable) by every user."""
    subprocess.run(["chmod", "-R", "a+rX", str(path)], check=True)
    return path


def readable_dir(prefix: str = "labkit-other-user-") -> Path:
    """A new folder under the temp dir that every user can enter (pytest's tmp_path is 0700); removed at exit."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    atexit.register(shutil.rmtree, path, True)
    return path


def labkit_env(dest: Path | None = None) -> dict[str, str]:
    """Copy labkit's source to ``dest`` (a new readable folder by default); PYTHONPATH finds it there."""
    dest = dest or readable_dir()
    shutil.copytree(REPO / "labkit", dest / "src" / "labkit", ignore=shutil.ignore_patterns("__pycache__"))
    readable(dest)
    return dict(os.environ, PYTHONPATH=str(dest / "src"))


def venv_copy(dest: Path, source: Path, user: str = "nobody", group: str = "nogroup") -> tuple[Path, dict[str, str]]:
    """A copy of this virtual environment at ``dest`` that ``user`` can run, importing labkit from ``source``.

    Returns its python and the environment it needs. Files are hard links where the file system
    allows (they are only read); the few files that change (the interpreter links, pyvenv.cfg,
    labkit's editable-install path) are replaced, never edited."""
    venv = Path(sys.prefix)
    try:
        subprocess.run(["cp", "-al", str(venv), str(dest)], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        shutil.copytree(venv, dest, symlinks=True)
    python, env = base_copy(dest.parent / "python", user, group)
    for name in os.listdir(dest / "bin"):
        link = dest / "bin" / name
        if name.startswith("python") and link.is_symlink():
            link.unlink()
            link.symlink_to(python)
    cfg = dest / "pyvenv.cfg"
    text = cfg.read_text()
    cfg.unlink()
    cfg.write_text("".join(f"home = {os.path.dirname(python)}\n" if line.startswith("home") else line + "\n"
                           for line in text.splitlines()))
    site = dest / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    for pth in site.glob("*.pth"):
        if str(REPO) in pth.read_text():
            pth.unlink()
    (site / "labkit-copy.pth").write_text(str(source) + "\n")
    readable(dest)
    return dest / "bin" / "python", env


def path_without(dest: Path, hidden: set[str]) -> str:
    """A PATH with every program of the usual folders except ``hidden``: one folder of links at ``dest``.

    Taking a program off PATH is how a machine without its package looks to labkit's ``shutil.which``
    calls; ``LABKIT_HIDE_PARTS`` covers what labkit looks up by absolute path (through the manifest)."""
    dest.mkdir(parents=True, exist_ok=True)
    for folder in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            link = dest / name
            if name in hidden or link.exists() or link.is_symlink():
                continue
            link.symlink_to(os.path.join(folder, name))
    readable(dest)
    return str(dest)


def hidden_parts() -> set[str]:
    """Every program the book installs (labkit/system_parts.tsv, install "book"), by name and other names."""
    from labkit import system_parts

    names = set()
    for p in system_parts.parts():
        if p.install == "book":
            names |= {p.name, *(os.path.basename(a) for a in p.also)}
    return names | {"containerd", "containerd-shim-runc-v2", "docker-proxy", "iptables-save", "iptables-restore"}
