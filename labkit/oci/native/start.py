"""How a native container's processes start: the parent forks a shim (which stays in the host
PID namespace, waits and records the exit status), the shim unshares the PID namespace and forks
the container's init (:mod:`labkit.oci.native.init`), and the two report back over a pipe.

:class:`ProcessStart` holds these steps for :class:`~labkit.oci.native.container.NativeContainer`.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from labkit.atomicfile import write_atomic
from labkit.oci import cgroups as cg
from labkit.oci import seccomp
from labkit.oci import syscalls as sc
from labkit.oci.native import init as cinit
from labkit.oci.native.state import ExecutableNotFound, ExitStatus, MemoryTooSmall, NativeError, status_code
from labkit.oci.native.userns import map_ids

_OWN_PID_NS: int | None = None


def own_pid_ns() -> int:
    """An fd on this process's own PID namespace, to return to after a container fork."""
    global _OWN_PID_NS
    if _OWN_PID_NS is None:
        _OWN_PID_NS = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    return _OWN_PID_NS



def close_fds_except(keep: set[int]) -> None:
    """Close every open descriptor not in ``keep`` (in a forked shim, which never execs, so
    close-on-exec does not help). Python objects of the caller that owned them are never used
    again here: the shim ends with ``os._exit``; the cyclic GC is off so none is finalized."""
    import gc

    gc.disable()
    try:
        fds = [int(x) for x in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


class ProcessStart:
    """The steps from ``create`` to a waiting (or running) container init; mixed into
    :class:`~labkit.oci.native.container.NativeContainer`, whose state they use."""

    def _create(self, cfg: dict[str, Any], rootfs: str, start_now: bool, fifo: bool, opened: list[int]) -> int:
        linux = cfg.get("linux") or {}
        try:  # compiled here, before any fork, so a bad profile is a clear error from create
            self._syscall_filter = seccomp.for_config(cfg)
        except seccomp.SeccompError as exc:
            raise NativeError(f"linux.seccomp: {exc}") from exc
        group = self.cgroup()
        try:
            group.create()
            group.set_resources(linux.get("resources"))
        except cg.CgroupError as exc:
            raise NativeError(str(exc)) from exc
        procs = [os.open(p, os.O_WRONLY | os.O_CLOEXEC) for p in group.join_files()]
        opened += procs
        sync_r, sync_w = os.pipe()
        self._sync_r = sync_r  # closed by _cleanup_failed if anything below fails
        opened.append(sync_w)
        start_r = start_w = None
        fifo_path = self.dir / "exec.fifo"
        if fifo:
            os.mkfifo(fifo_path, 0o600)
        elif not start_now:
            start_r, start_w = os.pipe()
            opened.append(start_r)
        stdio = self._stdio(opened)
        pid_ns = next((ns for ns in linux.get("namespaces") or [] if ns.get("type") == "pid"), None)
        pid_ns_fd = None
        if pid_ns and pid_ns.get("path"):
            try:
                pid_ns_fd = os.open(pid_ns["path"], os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise NativeError(f"cannot open pid namespace {pid_ns['path']}: {exc.strerror}") from exc
            opened.append(pid_ns_fd)
        userns = next((ns for ns in linux.get("namespaces") or [] if ns.get("type") == "user"), None)
        go_r = go_w = None
        if userns is not None:
            if userns.get("path"):
                raise NativeError("joining an existing user namespace is not supported; let labkit create one")
            go_r, go_w = os.pipe()
            opened += [go_r, go_w]
        if self.detach or userns is not None:
            # a shim waits for the container and records its exit: needed when the container
            # outlives this process, and with a user namespace (it must exist before the PID one)
            shim = os.fork()
            if shim == 0:
                self._shim(cfg, rootfs, sync_r, sync_w, start_r, start_w, fifo_path if fifo else None,
                           stdio, procs, pid_ns, pid_ns_fd, go_r)  # never returns
            self.shim_pid = self._waitee = shim
            if userns is not None:
                map_ids(shim, linux, sync_r, go_w)
        else:
            # in-process: this process is the parent of the container's PID 1 (one fork, no shim)
            child = self._fork_into_pid_ns(pid_ns, pid_ns_fd)
            if child == 0:
                cinit.container_init(cfg, rootfs, sync_w, start_r, stdio, procs, self.die_with_parent,
                                     syscall_filter=self._syscall_filter)
            self.pid = self._waitee = child
        self._sync_r = sync_r
        self._start_w = start_w
        for fd in list(opened):  # the children hold their copies now
            os.close(fd)
        opened.clear()
        if start_now and self._fast and self.shim_pid is None:
            return self.pid or 0  # run(): the setup messages are read after the exit
        msgs = self._read_sync(until_ready=True)
        if "P" in msgs:
            self.pid = int(msgs["P"])
        if "E" in msgs or "R" not in msgs:
            self._raise_setup_error(msgs, self._reap())
        if start_now:
            self._after_exec()
            self._write_state(status="running", started=True)
        else:
            self._write_state(status="created", started=False)
        return self.pid or 0

    def _fork_into_pid_ns(self, pid_ns: dict[str, Any] | None, pid_ns_fd: int | None) -> int:
        """fork() with the child as PID 1 of a new (or the given) PID namespace.

        ``unshare(CLONE_NEWPID)`` changes only where this thread's *future children* go, so the
        namespace is entered just for this one fork and left again right after it.
        """
        if pid_ns is None:
            return os.fork()
        own = own_pid_ns()
        if pid_ns_fd is not None:
            sc.setns(pid_ns_fd, sc.CLONE_NEWPID)
        else:
            sc.unshare(sc.CLONE_NEWPID)
        try:
            child = os.fork()
        except BaseException:
            sc.setns(own, sc.CLONE_NEWPID)
            raise
        if child != 0:
            sc.setns(own, sc.CLONE_NEWPID)
        return child

    def _raise_setup_error(self, msgs: dict[str, str], status: ExitStatus) -> None:
        """Turn what the init reported (or did not) into the error that says what to do."""
        if "E" in msgs:
            text = msgs["E"]
            kind = ExecutableNotFound if "executable not found" in text or "not executable" in text \
                else NativeError
            raise kind(text)
        if self.cgroup().oom_killed():
            raise MemoryTooSmall("the memory limit is too small: the kernel OOM-killed the container "
                                 "before its program started; raise the limit")
        raise NativeError(f"container init died before it was ready (exit status {status.code})")

    def _stdio(self, opened: list[int]) -> tuple[int, int, int]:
        def dev_null(mode: int) -> int:
            fd = os.open("/dev/null", mode | os.O_CLOEXEC)
            opened.append(fd)
            return fd
        stdin = self.stdin if self.stdin is not None else dev_null(os.O_RDONLY)
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
            opened.append(log)
            out = self.stdout if self.stdout is not None else log
            err = self.stderr if self.stderr is not None else log
        else:
            out = self.stdout if self.stdout is not None else (1 if self.detach is False else dev_null(os.O_WRONLY))
            err = self.stderr if self.stderr is not None else (2 if self.detach is False else dev_null(os.O_WRONLY))
        return stdin, out, err

    def _shim(self, cfg: dict[str, Any], rootfs: str, sync_r: int, sync_w: int, start_r: int | None,
              start_w: int | None, fifo_path: Path | None, stdio: tuple[int, int, int], procs: list[int],
              pid_ns: dict[str, Any] | None, pid_ns_fd: int | None, go_r: int | None = None) -> None:
        code = 1
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            if self.detach:
                os.setsid()
            elif self.die_with_parent:
                sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
            os.close(sync_r)
            if start_w is not None:
                os.close(start_w)
            # the shim can outlive its caller by hours: keep only the descriptors it and the
            # container's init need, never the caller's (a shell's $(...) pipe, a notebook's sockets)
            close_fds_except({0, 1, 2, sync_w, *stdio, *procs,
                               *(fd for fd in (start_r, pid_ns_fd, go_r) if fd is not None)})
            if go_r is not None:
                # user namespace first, so that it owns every namespace made after it
                sc.unshare(sc.CLONE_NEWUSER)
                os.write(sync_w, b"U\n")
                if os.read(go_r, 1) != b"1":
                    os._exit(1)
                os.close(go_r)
                os.setresgid(0, 0, 0)
                os.setresuid(0, 0, 0)
            if pid_ns is not None:
                if pid_ns_fd is not None:
                    sc.setns(pid_ns_fd, sc.CLONE_NEWPID)
                else:
                    sc.unshare(sc.CLONE_NEWPID)
            child = os.fork()
            if child == 0:
                start_fd = start_r
                if fifo_path is not None:
                    start_fd = os.open(fifo_path, os.O_RDWR | os.O_CLOEXEC)
                cinit.container_init(cfg, rootfs, sync_w, start_fd, stdio, procs, self.die_with_parent,
                                     syscall_filter=self._syscall_filter)
            os.write(sync_w, f"P{child}\n".encode())
            os.close(sync_w)
            # the shim outlives the command that created it: let go of that command's stdio
            null = os.open("/dev/null", os.O_RDWR)
            for target in (0, 1, 2):
                os.dup2(null, target)
            os.close(null)
            for fd in procs + [x for x in (start_r,) if x is not None]:
                os.close(fd)
            while True:
                try:
                    _, status = os.waitpid(child, 0)
                    break
                except ChildProcessError:
                    status = 0
                    break
                except InterruptedError:
                    continue
            code, sig = status_code(status)
            write_atomic(self.dir / "exit.json", json.dumps({"code": code, "signal": sig, "finished_at": time.time()}))
        except BaseException as exc:  # noqa: BLE001 - never unwind into the parent's stack
            try:
                os.write(sync_w, b"E" + f"shim failed: {exc}".encode()[:2000] + b"\n")
            except OSError:
                pass
        finally:
            os._exit(code & 0xFF)

    def _read_sync(self, until_ready: bool) -> dict[str, str]:
        """Read the init's messages: ``P<pid>``, then ``R`` (ready) or ``E<error>``; EOF = exec'd."""
        msgs: dict[str, str] = {}
        if self.shim_pid is None and self.pid:
            msgs["P"] = str(self.pid)
        buf = b""
        assert self._sync_r is not None
        while True:
            chunk = os.read(self._sync_r, 4096)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line:
                    msgs[chr(line[0])] = line[1:].decode(errors="replace")
            if until_ready and "P" in msgs and ("R" in msgs or "E" in msgs):
                break
        if not chunk or "E" in msgs:
            os.close(self._sync_r)
            self._sync_r = None
        return msgs

    def _after_exec(self) -> None:
        """Wait until the init has exec'd its program (the sync pipe closes) or report its error."""
        if self._sync_r is None:
            return
        msgs = self._read_sync(until_ready=False)
        if "E" in msgs:
            self.wait()
            raise NativeError(msgs["E"])
