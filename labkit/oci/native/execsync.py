"""Run another program inside a running native container, as ``runc exec`` and the CRI's
``ExecSync`` do: join its namespaces and cgroup, drop to its capabilities, collect the output."""

from __future__ import annotations

import os
import selectors
import signal
import time
from dataclasses import dataclass
from typing import Any

from labkit.oci import syscalls as sc
from labkit.oci.native import init as cinit
from labkit.oci.native.state import status_code
from labkit.oci.seccomp import Filter


@dataclass
class ExecOutput:
    exit_code: int
    stdout: bytes
    stderr: bytes




def spawn_in(pid: int, proc: dict[str, Any], join_files: list, stdio: tuple[int, int, int], tty: bool = False,
             syscall_filter: Filter | None = None) -> int:
    """Start ``proc`` in the namespaces of ``pid`` with ``stdio`` as its descriptors and return at
    once: the streaming exec (``kubectl exec``). Wait for the returned pid; its status is the command's.
    ``syscall_filter``: the container's seccomp filter, which an exec'd process gets too."""
    ns_fds = _namespace_fds(pid)
    procs = [os.open(p, os.O_WRONLY | os.O_CLOEXEC) for p in join_files if os.path.exists(p)]
    child = os.fork()
    if child == 0:
        # hold nothing else of the parent's (above all its end of the stdin pipe, or stdin never ends)
        keep = set(ns_fds + procs + list(stdio))
        for fd in (int(n) for n in os.listdir("/proc/self/fd")):
            if fd > 2 and fd not in keep:
                try:
                    os.close(fd)
                except OSError:
                    pass
        _exec_child(proc, ns_fds, procs, stdio[1], stdio[2], stdin=stdio[0], tty=tty,
                    syscall_filter=syscall_filter)  # never returns
    for fd in ns_fds + procs:
        os.close(fd)
    return child


def _namespace_fds(pid: int) -> list[int]:
    ns_fds = []
    for t in ("user", "ipc", "uts", "net", "pid", "mnt"):  # user first: it owns the others
        a, b = f"/proc/{pid}/ns/{t}", f"/proc/self/ns/{t}"
        if os.stat(a).st_ino != os.stat(b).st_ino:
            ns_fds.append(os.open(a, os.O_RDONLY | os.O_CLOEXEC))
    return ns_fds


def exec_in(pid: int, proc: dict[str, Any], join_files: list, timeout: float,
            syscall_filter: Filter | None = None) -> ExecOutput:
    """Run ``proc`` (an OCI process: args, env, cwd, capabilities) in the namespaces of ``pid``
    and the cgroup whose ``join_files`` are given; wait at most ``timeout`` seconds."""
    ns_fds = _namespace_fds(pid)
    procs = [os.open(p, os.O_WRONLY | os.O_CLOEXEC) for p in join_files if os.path.exists(p)]
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    child = os.fork()
    if child == 0:
        _exec_child(proc, ns_fds, procs, out_w, err_w, syscall_filter=syscall_filter)  # never returns
    for fd in ns_fds + procs + [out_w, err_w]:
        os.close(fd)
    out, err = _collect(out_r, err_r, timeout, child)
    _, status = os.waitpid(child, 0)
    code, _sig = status_code(status)
    return ExecOutput(code, out, err)


def _exec_child(proc: dict[str, Any], ns_fds: list[int], procs: list[int], out_w: int, err_w: int,
                stdin: int | None = None, tty: bool = False, syscall_filter: Filter | None = None) -> None:
    code = 127
    try:
        sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
        for fd in ns_fds:
            sc.setns(fd, 0)
        grandchild = os.fork()  # the pid namespace applies to children only
        if grandchild == 0:
            try:
                sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
                if stdin is None:
                    stdin = os.open("/dev/null", os.O_RDONLY)
                os.dup2(stdin, 0)
                os.dup2(out_w, 1)
                os.dup2(err_w, 2)
                if tty:  # a session of its own with the terminal as its controlling tty (job control, ^C)
                    import fcntl
                    import termios

                    os.setsid()
                    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
                for fd in procs:
                    os.write(fd, b"0")
                for sig in (signal.SIGPIPE, signal.SIGINT, signal.SIGTERM):
                    signal.signal(sig, signal.SIG_DFL)
                os.chdir(proc["cwd"])
                exe = cinit.find_executable(proc["args"][0], proc["env"], proc["cwd"])
                cinit.confine(proc, syscall_filter)
                env = dict(e.partition("=")[::2] for e in proc["env"])
                os.execve(exe, proc["args"], env)
            except BaseException as exc:  # noqa: BLE001
                try:
                    os.write(err_w, f"labkit exec: {exc}\n".encode())
                except OSError:
                    pass
            finally:
                os._exit(127)
        _, status = os.waitpid(grandchild, 0)
        code, _ = status_code(status)
    except BaseException as exc:  # noqa: BLE001
        try:
            os.write(err_w, f"labkit exec: {exc}\n".encode())
        except OSError:
            pass
    finally:
        os._exit(code & 0xFF)


def _collect(out_r: int, err_r: int, timeout: float, child: int) -> tuple[bytes, bytes]:
    bufs = {out_r: b"", err_r: b""}
    sel = selectors.DefaultSelector()
    for fd in bufs:
        sel.register(fd, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    open_fds = set(bufs)
    while open_fds:
        left = deadline - time.monotonic()
        if left <= 0:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
            break
        for key, _ in sel.select(left):
            data = os.read(key.fd, 65536)
            if data:
                bufs[key.fd] += data
            else:
                sel.unregister(key.fd)
                open_fds.discard(key.fd)
    sel.close()
    for fd in bufs:
        os.close(fd)
    return bufs[out_r], bufs[err_r]
