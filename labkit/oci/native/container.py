"""labkit's own OCI runtime: the library API (``NativeContainer``).

It runs a bundle the way runc does, but forks from the calling Python process instead of
starting a new program, which is why a trivial container starts in a few milliseconds::

    parent (your Python) --fork--> shim (host PID namespace; waits, records the exit status)
                                     --unshare(PID), fork--> init = PID 1 of the container
                                         namespaces, mounts, pivot_root, cgroups, caps, execve

Contract (stable)::

    c = NativeContainer(bundle_dir, "c1", stdout=fd_or_None, stderr=..., log_path=None)
    c.create()      # everything up to exec; the program waits (runc create)
    c.start()       # exec the program (runc start)
    c.wait() -> ExitStatus(code, signal, oom_killed, reason)
    c.kill(signal.SIGTERM); c.delete(force=True); c.state() -> runc-shaped dict
    c.exec(["ps"]) -> ExecOutput(exit_code, stdout, stderr)   # like runc exec / CRI ExecSync
    NativeContainer(bundle_dir, "c2").run() -> ExitStatus      # create+start+wait+delete, fast path

Errors are :class:`NativeError` subclasses with a message that says what to do. The parts live
beside this file: :mod:`~labkit.oci.native.state` (errors, exit status, records),
:mod:`~labkit.oci.native.start` (shim and init processes), :mod:`~labkit.oci.native.userns` and
:mod:`~labkit.oci.native.execsync`.
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
from labkit.oci.bundle import Bundle, BundleError
from labkit.oci.native import userns
from labkit.oci.native.execsync import ExecOutput, exec_in, spawn_in
from labkit.oci.native.start import ProcessStart
from labkit.oci.native.state import (
    _ID_RE,
    RUNTIME_NAME,
    VERSION,
    ContainerNotFound,
    ExecutableNotFound,
    ExitStatus,
    MemoryTooSmall,
    NativeError,
    NotRoot,
    default_root,
    has_entries,
    pid_alive,
    status_code,
)
from labkit.oci.spec import MIN_MEMORY_BYTES

__all__ = ["RUNTIME_NAME", "VERSION", "ContainerNotFound", "ExecOutput", "ExecutableNotFound", "ExitStatus",
           "MemoryTooSmall", "NativeContainer", "NativeError", "NotRoot", "default_root"]


class NativeContainer(ProcessStart):
    """One container run by labkit's runtime. See the module docstring for the life cycle."""

    def __init__(self, bundle: str | os.PathLike[str], id: str, root: str | os.PathLike[str] | None = None,
                 stdin: int | None = None, stdout: int | None = None, stderr: int | None = None,
                 log_path: str | os.PathLike[str] | None = None, detach: bool = False,
                 die_with_parent: bool = True) -> None:
        if not _ID_RE.match(id or ""):
            raise NativeError(f"bad container ID {id!r}: use letters, digits, '_', '.', '-' (max 128)")
        self.id = id
        self.bundle_path = Path(os.path.abspath(bundle))
        self.root = Path(root) if root else default_root()
        self.dir = self.root / id
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.log_path = Path(log_path) if log_path else None
        self.detach = detach
        self.die_with_parent = die_with_parent and not detach
        self.pid: int | None = None
        self.shim_pid: int | None = None
        self._waitee: int | None = None  # the child this process reaps (shim or PID 1)
        self._fast = False  # run(): no state files, no ready hand-shake
        self._syscall_filter: Any = None  # linux.seccomp, compiled by create() before it forks
        self._state: dict[str, Any] | None = None
        self._sync_r: int | None = None
        self._start_w: int | None = None
        self._cgroup: cg.Cgroup | None = None
        self._exit: ExitStatus | None = None
        self._config: dict[str, Any] | None = None

    # --- state on disk --------------------------------------------------------------
    @classmethod
    def load(cls, id: str, root: str | os.PathLike[str] | None = None) -> NativeContainer:
        """A container created earlier (perhaps by another process), from its state file."""
        r = Path(root) if root else default_root()
        f = r / id / "state.json"
        try:
            st = json.loads(f.read_text())
        except FileNotFoundError as exc:
            raise ContainerNotFound(f"container {id!r} does not exist (no {f})") from exc
        c = cls(st["bundle"], id, root=r, detach=True)
        c.pid, c.shim_pid = st.get("pid"), st.get("shim_pid")
        return c

    def _write_state(self, **extra: Any) -> None:
        """Write ``state.json`` (what ``state``, ``kill`` and ``delete`` from another process read)."""
        st = self._state
        if st is None:
            st = self._read_state() or {
                "ociVersion": "1.0.2", "id": self.id, "bundle": str(self.bundle_path),
                "rootfs": str(self._rootfs()), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "annotations": (self.config.get("annotations") or {}), "owner": ""}
            self._state = st
        st.update({"pid": self.pid, "shim_pid": self.shim_pid,
                   "cgroupsPath": self._cgroup.path if self._cgroup else None})
        st.update(extra)
        write_atomic(self.dir / "state.json", json.dumps(st))

    def _read_state(self) -> dict[str, Any]:
        try:
            return json.loads((self.dir / "state.json").read_text())
        except (OSError, ValueError):
            return {}

    @property
    def config(self) -> dict[str, Any]:
        if self._config is None:
            try:
                self._config = Bundle.open(self.bundle_path).config
            except BundleError as exc:
                raise NativeError(str(exc)) from exc
        return self._config

    def _rootfs(self) -> Path:
        root = (self.config.get("root") or {}).get("path") or "rootfs"
        return Path(root) if os.path.isabs(root) else self.bundle_path / root

    def cgroup(self) -> cg.Cgroup:
        if self._cgroup is None:
            path = (self.config.get("linux") or {}).get("cgroupsPath") or f"/labkit/{self.id}"
            if not path.startswith("/"):
                path = "/" + path
            self._cgroup = cg.Cgroup(path)
        return self._cgroup

    # --- life cycle -----------------------------------------------------------------
    def create(self, start_now: bool = False, fifo: bool = False) -> int:
        """Set the container up to the point of exec and return its host PID.

        ``start_now`` skips the wait for :meth:`start` (the fast path :meth:`run` uses);
        ``fifo`` waits on ``<state>/exec.fifo`` instead, so another process can start it (CLI).
        """
        if not hasattr(os, "geteuid") or os.geteuid() != 0 or os.environ.get("LABKIT_PRETEND_NOT_ROOT"):
            raise NotRoot("the native runtime needs root: it creates namespaces, mounts and cgroups. "
                          "Run as root, or use the simulated runtime (--runtime simulated)")
        cfg = self.config
        rootfs = self._rootfs()
        if not has_entries(rootfs):
            raise NativeError(f"root file system {rootfs} is missing or empty; prepare it first "
                              "(ImageStore.prepare_rootfs)")
        if (cfg.get("process") or {}).get("terminal"):
            raise NativeError("process.terminal=true is not supported by the native runtime; set it to false")
        mem = (((cfg.get("linux") or {}).get("resources") or {}).get("memory") or {}).get("limit")
        if mem is not None and int(mem) < MIN_MEMORY_BYTES:
            raise MemoryTooSmall(f"memory limit {mem} bytes is too small to start a container "
                                 f"(minimum {MIN_MEMORY_BYTES // 2**20} MiB)")
        userns.check_access(cfg, rootfs)
        try:
            self.dir.mkdir(parents=True)
        except FileExistsError as exc:
            raise NativeError(f"container {self.id!r} already exists; delete it first") from exc
        owner = userns.host_root(cfg)
        if owner is not None:  # the shim lives in the user namespace and records the exit status here
            os.chown(self.dir, owner[0], owner[1])
        opened: list[int] = []
        try:
            return self._create(cfg, str(rootfs), start_now, fifo, opened)
        except BaseException:
            self._cleanup_failed()
            raise
        finally:
            for fd in opened:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def start(self) -> None:
        """Let the created container exec its program (runc start)."""
        if self._start_w is not None:
            os.write(self._start_w, b"1")
            os.close(self._start_w)
            self._start_w = None
            self._after_exec()
        else:
            fifo = self.dir / "exec.fifo"
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except FileNotFoundError as exc:
                raise NativeError(f"container {self.id!r} cannot be started: it is not in the created state") from exc
            except OSError as exc:
                raise NativeError(f"container {self.id!r} is not waiting to start ({exc.strerror})") from exc
            try:
                os.write(fd, b"1")
            finally:
                os.close(fd)
            fifo.unlink(missing_ok=True)
        self._write_state(status="running", started=True)

    def run(self) -> ExitStatus:
        """create + start + wait + delete in one call: the fast path for short jobs.

        It skips the hand-shake a separate :meth:`start` needs: the parent goes straight to
        ``waitpid`` and reads the init's messages afterwards, so a setup error still raises.
        """
        self._fast = True
        try:
            self.create(start_now=True)
            status = self.wait()
            if self._sync_r is not None:  # direct mode: what did the init say before it exited?
                msgs = self._read_sync(until_ready=False)
                if "R" not in msgs:
                    self._raise_setup_error(msgs, status)
            return status
        finally:
            self._fast = False
            self.delete(force=True)

    def _reap(self) -> ExitStatus:
        """waitpid() our child (the shim, or the container's PID 1) and record the exit status."""
        code, sig = 255, None
        pid = self._waitee
        if pid:
            while True:
                try:
                    _, status = os.waitpid(pid, 0)
                    code, sig = status_code(status)
                    break
                except InterruptedError:
                    continue
                except ChildProcessError:
                    break
            self._waitee = None
            self.shim_pid = None
        ex = self._exit_from_file()
        if ex is not None:
            return ex
        self._record_exit(code, sig)
        return ExitStatus(code, sig)

    def _record_exit(self, code: int, sig: int | None) -> None:
        if not self._fast and self.dir.is_dir():
            write_atomic(self.dir / "exit.json", json.dumps({"code": code, "signal": sig, "finished_at": time.time()}))

    def wait(self, timeout: float | None = None) -> ExitStatus:
        """Block until the program exits; the status says whether the kernel OOM-killed it."""
        if self._exit is not None:
            return self._exit
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._waitee and self._is_my_child(self._waitee):
            if deadline is None:
                status = self._reap()
            else:
                delay = 0.0005
                while True:
                    pid, _st = os.waitpid(self._waitee, os.WNOHANG)
                    if pid:
                        code, sig = status_code(_st)
                        self._waitee = self.shim_pid = None
                        status = self._exit_from_file()
                        if status is None:
                            self._record_exit(code, sig)
                            status = ExitStatus(code, sig)
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"container {self.id} still running after {timeout} s")
                    time.sleep(delay)
                    delay = min(delay * 2, 0.05)
        else:
            delay = 0.001
            while True:
                status = self._exit_from_file()
                if status is not None:
                    break
                if self.pid and not pid_alive(self.pid) and not (self.shim_pid and pid_alive(self.shim_pid)):
                    status = self._exit_from_file() or ExitStatus(255)
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"container {self.id} still running after {timeout} s")
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        status.oom_killed = status.signal == signal.SIGKILL and self.cgroup().oom_killed()
        self._exit = status
        return status

    def _exit_from_file(self) -> ExitStatus | None:
        try:
            ex = json.loads((self.dir / "exit.json").read_text())
            return ExitStatus(ex["code"], ex["signal"])
        except (OSError, ValueError, KeyError):
            return None

    @staticmethod
    def _is_my_child(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as f:
                return int(f.read().rsplit(")", 1)[1].split()[1]) == os.getpid()
        except (OSError, ValueError, IndexError):
            return False

    def status(self) -> str:
        """``created``, ``running`` or ``stopped`` (runc's words)."""
        if (self.dir / "exit.json").exists() or self._exit is not None:
            return "stopped"
        st = self._read_state()
        if not st:
            raise ContainerNotFound(f"container {self.id!r} does not exist")
        pid = st.get("pid")
        if not pid or not pid_alive(pid):
            return "stopped"
        return "running" if st.get("started") else "created"

    def state(self) -> dict[str, Any]:
        """The runc-shaped state: ociVersion, id, status, pid, bundle, rootfs, created, annotations."""
        st = self._read_state()
        if not st:
            raise ContainerNotFound(f"container {self.id!r} does not exist")
        out = {k: st.get(k) for k in ("ociVersion", "id", "pid", "bundle", "rootfs", "created", "owner")}
        out["status"] = self.status()
        if out["status"] == "stopped":
            out["pid"] = 0
            ex = self._exit_from_file()
            if ex is not None:
                out["exitCode"] = ex.code
        out["annotations"] = st.get("annotations") or {}
        return out

    def kill(self, sig: int = signal.SIGTERM, all: bool = False) -> None:
        """Send ``sig`` to the container's PID 1 (or, with ``all``, to every process in its cgroup).

        PID 1 ignores signals it has no handler for, SIGKILL excepted: the reason ``docker stop``
        falls back to SIGKILL after a grace period.
        """
        if all:
            self.cgroup().kill(sig)
            return
        pid = self.pid or self._read_state().get("pid")
        if not pid or self.status() == "stopped":
            raise NativeError(f"container {self.id!r} is not running")
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def delete(self, force: bool = False) -> None:
        """Remove the container's processes (with ``force``), cgroup and state; not its rootfs."""
        if not self.dir.exists():
            if self._cgroup is not None and self._cgroup.exists():
                self._cgroup.destroy()
            return
        st = self.status()
        if st != "stopped" and not force:
            raise NativeError(f"container {self.id!r} is {st}; stop it first or delete with force")
        if st != "stopped" or self._waitee:
            self.cgroup().kill()
            if self.pid:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                self.wait(timeout=10)
            except TimeoutError:
                pass
        if self._start_w is not None:
            os.close(self._start_w)
            self._start_w = None
        if self._sync_r is not None:
            os.close(self._sync_r)
            self._sync_r = None
        try:
            self.cgroup().destroy()
        except cg.CgroupError as exc:
            raise NativeError(str(exc)) from exc
        for f in ("state.json", "exit.json", "exec.fifo", "state.json.tmp", "exit.json.tmp"):
            (self.dir / f).unlink(missing_ok=True)
        for f in self.dir.glob(".*.tmp"):  # a writer killed between write and rename
            f.unlink(missing_ok=True)
        try:
            self.dir.rmdir()
        except OSError:
            pass

    def _cleanup_failed(self) -> None:
        if self._start_w is not None:
            os.close(self._start_w)
            self._start_w = None
        if self._waitee:
            try:
                os.kill(self._waitee, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reap()
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._sync_r is not None:
            os.close(self._sync_r)
            self._sync_r = None
        try:
            if self._cgroup is not None:
                self._cgroup.destroy()
        except cg.CgroupError:
            pass
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)

    # --- exec -----------------------------------------------------------------------
    def _exec_process(self, args: list[str]) -> tuple[int, dict]:
        """The running container's init pid, and its ``process`` with ``args`` in place: what every
        exec starts from (it inherits the container's user, capabilities and no_new_privs)."""
        if not args:
            raise NativeError("exec needs a command")
        pid = self.pid or self._read_state().get("pid")
        if not pid or self.status() != "running":
            raise NativeError(f"container {self.id!r} is not running; cannot exec into it")
        proc = dict(self.config.get("process") or {})
        proc["args"] = list(args)
        return pid, proc

    def exec(self, args: list[str], env: list[str] | None = None, cwd: str | None = None,
             timeout: float = 10.0) -> ExecOutput:
        """Run another program inside the running container (its namespaces, cgroup and caps)."""
        pid, proc = self._exec_process(args)
        proc["env"] = list(env if env is not None else proc.get("env") or [])
        proc["cwd"] = cwd or proc.get("cwd") or "/"
        return exec_in(pid, proc, self.cgroup().join_files(), timeout, seccomp.for_config(self.config))

    def exec_spawn(self, args: list[str], stdio: tuple[int, int, int], tty: bool = False) -> int:
        """Start another program inside the running container on these descriptors; its pid to wait for."""
        pid, proc = self._exec_process(args)
        proc["env"] = list(proc.get("env") or []) + (["TERM=xterm"] if tty else [])
        proc["cwd"] = proc.get("cwd") or "/"
        return spawn_in(pid, proc, self.cgroup().join_files(), stdio, tty, seccomp.for_config(self.config))
