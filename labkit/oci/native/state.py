"""What a native container is on disk and to the caller: its errors, its exit status, where
its records live, and the facts about processes that its state is read from."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from labkit.errors import LabkitError, NotFound, Unsupported

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
RUNTIME_NAME = "labkit-native"
VERSION = "0.1.0"


class NativeError(LabkitError):
    """The native runtime could not do what was asked; the message says why and what to do."""


class ContainerNotFound(NativeError, NotFound):
    pass


class ExecutableNotFound(NativeError):
    """The command does not exist (or is not executable) inside the image."""


class MemoryTooSmall(NativeError):
    """The memory limit was so small the container was OOM-killed before its program started."""


class NotRoot(NativeError, Unsupported):
    """Namespaces, mounts and cgroups need root."""


@dataclass
class ExitStatus:
    code: int  # 0-255; 128+N when killed by signal N (what a shell shows)
    signal: int | None = None
    oom_killed: bool = False

    @property
    def reason(self) -> str:
        if self.oom_killed:
            return "OOMKilled"
        return "Completed" if self.code == 0 else "Error"


_DEFAULT_ROOT: Path | None = None


def default_root() -> Path:
    """``<labkit state>/native``: one directory per container (state.json, exit.json, exec.fifo)."""
    global _DEFAULT_ROOT
    from labkit.paths import state_dir

    if _DEFAULT_ROOT is None or os.environ.get("LABKIT_STATE"):
        _DEFAULT_ROOT = state_dir() / "native"
    return _DEFAULT_ROOT


def status_code(status: int) -> tuple[int, int | None]:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return 128 + sig, sig
    return os.WEXITSTATUS(status), None


def has_entries(path: Path) -> bool:
    try:
        with os.scandir(path) as it:
            return next(it, None) is not None
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


