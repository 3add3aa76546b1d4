"""The cluster's component processes: start them, wait for them, signal them, reap them.

Each component is a process of its own (``processes=True``), started in a new session so a
signal meant for the notebook does not reach it, and (for a notebook's cluster) told by the
kernel to exit when the process that started it dies.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


class ClusterError(Exception):
    """The cluster could not start (the message says which component and where its log is)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Component:
    name: str
    cmd: list[str]
    log: str
    pid: int | None = None
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        if not self.pid:
            return False
        try:
            os.kill(self.pid, 0)
        except OSError:
            return False
        try:  # a zombie or a recycled pid is not our component
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            return "labkit" in cmdline or "etcd" in cmdline
        except OSError:
            return False


def spawn(name: str, cmd: list[str], log: str, cwd: str, die_with_parent: bool) -> Component:
    """Start ``cmd`` as component ``name``, its output appended to ``log``."""
    with open(log, "ab") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=cwd,
                                preexec_fn=_pdeathsig(os.getpid()) if die_with_parent else None)
    return Component(name, cmd, log, proc.pid, proc)


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
        return True
    except OSError:
        return False


def _pdeathsig(parent: int):
    """A preexec_fn: the child gets SIGTERM when the process that started it dies (Linux prctl)."""
    def set_it() -> None:
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)
    return set_it


def http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as r:
            return r.status == 200
    except OSError:
        return False


def tail(path: str, n: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def raise_exited(c: Component) -> bool:
    raise ClusterError(f"{c.name} exited at start; its log {c.log} ends with:\n{tail(c.log)}")


def wait_for(pred, timeout: float, what: str, log: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise ClusterError(f"{what} not ready after {timeout:.0f}s; see {log}:\n{tail(log)}")


def send_signal(c: Component, sig: int) -> None:
    if c.pid and c.alive:
        try:
            os.kill(c.pid, sig)
        except OSError:
            pass


def reap(c: Component, timeout: float) -> None:
    deadline = time.time() + timeout
    while c.alive and time.time() < deadline:
        if c.proc is not None:
            try:
                c.proc.wait(0.1)
            except subprocess.TimeoutExpired:
                pass
        else:
            time.sleep(0.1)
    if c.alive:
        send_signal(c, signal.SIGKILL)
        if c.proc is not None:
            c.proc.wait(5)
