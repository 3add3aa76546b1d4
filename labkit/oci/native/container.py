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

Errors are :class:`NativeError` subclasses with a message that says what to do.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.atomicfile import write_atomic
from labkit.errors import LabkitError, NotFound, Unsupported
from labkit.oci import cgroups as cg
from labkit.oci import syscalls as sc
from labkit.oci.bundle import Bundle, BundleError
from labkit.oci.native import init as cinit
from labkit.oci.spec import MIN_MEMORY_BYTES

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


@dataclass
class ExecOutput:
    exit_code: int
    stdout: bytes
    stderr: bytes


_DEFAULT_ROOT: Path | None = None


def default_root() -> Path:
    """``<labkit state>/native``: one directory per container (state.json, exit.json, exec.fifo)."""
    global _DEFAULT_ROOT
    from labkit.paths import state_dir

    if _DEFAULT_ROOT is None or os.environ.get("LABKIT_STATE"):
        _DEFAULT_ROOT = state_dir() / "native"
    return _DEFAULT_ROOT


def _status_code(status: int) -> tuple[int, int | None]:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return 128 + sig, sig
    return os.WEXITSTATUS(status), None


_OWN_PID_NS: int | None = None


def _own_pid_ns() -> int:
    """An fd on this process's own PID namespace, to return to after a container fork."""
    global _OWN_PID_NS
    if _OWN_PID_NS is None:
        _OWN_PID_NS = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    return _OWN_PID_NS


def _check_userns_access(cfg: dict[str, Any], rootfs: Path) -> None:
    """With a user namespace, root inside is an ordinary uid outside: it must be able to walk to
    the root file system, or the first mount fails with a bare "permission denied"."""
    linux = cfg.get("linux") or {}
    if not any(ns.get("type") == "user" for ns in linux.get("namespaces") or []):
        return
    maps = linux.get("uidMappings") or []
    if not maps:
        raise NativeError("a user namespace needs linux.uidMappings (e.g. container 0 = host 100000)")
    host_root = next((m["hostID"] for m in maps if m["containerID"] == 0), None)
    for d in [rootfs, *rootfs.parents]:
        st = d.stat()
        if st.st_mode & 0o001 or (host_root is not None and st.st_uid == host_root and st.st_mode & 0o100):
            continue
        raise NativeError(f"with a user namespace the container's root (host uid {host_root}) cannot enter "
                          f"{d} (mode {oct(st.st_mode & 0o777)}); allow it with `chmod o+x {d}` or move the bundle")


def _userns_host_root(cfg: dict[str, Any]) -> tuple[int, int] | None:
    """(host uid, host gid) of the container's root when the config asks for a user namespace."""
    linux = cfg.get("linux") or {}
    if not any(ns.get("type") == "user" for ns in linux.get("namespaces") or []):
        return None
    def host_id(maps: list[dict[str, int]]) -> int:
        return next((m["hostID"] for m in maps if m["containerID"] == 0), 0)
    return host_id(linux.get("uidMappings") or []), host_id(linux.get("gidMappings") or [])


def _has_entries(path: Path) -> bool:
    try:
        with os.scandir(path) as it:
            return next(it, None) is not None
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
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


class NativeContainer:
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
        if not _has_entries(rootfs):
            raise NativeError(f"root file system {rootfs} is missing or empty; prepare it first "
                              "(ImageStore.prepare_rootfs)")
        if (cfg.get("process") or {}).get("terminal"):
            raise NativeError("process.terminal=true is not supported by the native runtime; set it to false")
        mem = (((cfg.get("linux") or {}).get("resources") or {}).get("memory") or {}).get("limit")
        if mem is not None and int(mem) < MIN_MEMORY_BYTES:
            raise MemoryTooSmall(f"memory limit {mem} bytes is too small to start a container "
                                 f"(minimum {MIN_MEMORY_BYTES // 2**20} MiB)")
        _check_userns_access(cfg, rootfs)
        try:
            self.dir.mkdir(parents=True)
        except FileExistsError as exc:
            raise NativeError(f"container {self.id!r} already exists; delete it first") from exc
        owner = _userns_host_root(cfg)
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

    def _create(self, cfg: dict[str, Any], rootfs: str, start_now: bool, fifo: bool, opened: list[int]) -> int:
        linux = cfg.get("linux") or {}
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
                self._map_user_namespace(shim, linux, sync_r, go_w)
        else:
            # in-process: this process is the parent of the container's PID 1 (one fork, no shim)
            child = self._fork_into_pid_ns(pid_ns, pid_ns_fd)
            if child == 0:
                cinit.container_init(cfg, rootfs, sync_w, start_r, stdio, procs, self.die_with_parent)
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
        own = _own_pid_ns()
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

    def _map_user_namespace(self, shim: int, linux: dict[str, Any], sync_r: int, go_w: int) -> None:
        """Write the shim's uid/gid maps once it has entered its new user namespace."""
        buf = b""
        while b"U\n" not in buf and b"E" not in buf:
            chunk = os.read(sync_r, 4096)
            if not chunk:
                return  # the shim died; the caller reports it
            buf += chunk
        if b"U\n" not in buf:  # the shim reported an error instead
            text = buf.split(b"E", 1)[1].split(b"\n", 1)[0].decode(errors="replace")
            raise NativeError(text or "the container's shim failed before its user namespace was mapped")
        def fmt(maps: list[dict[str, int]]) -> str:
            return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps)
        try:
            with open(f"/proc/{shim}/uid_map", "w") as f:
                f.write(fmt(linux.get("uidMappings") or []))
            with open(f"/proc/{shim}/gid_map", "w") as f:
                f.write(fmt(linux.get("gidMappings") or []))
        except OSError as exc:
            os.kill(shim, signal.SIGKILL)
            raise NativeError(f"cannot map the user namespace ({exc.strerror}); check uidMappings/gidMappings"
                              ) from exc
        os.write(go_w, b"1")

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
            _close_fds_except({0, 1, 2, sync_w, *stdio, *procs,
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
                cinit.container_init(cfg, rootfs, sync_w, start_fd, stdio, procs, self.die_with_parent)
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
            code, sig = _status_code(status)
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
                    code, sig = _status_code(status)
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
                        code, sig = _status_code(_st)
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
                if self.pid and not _pid_alive(self.pid) and not (self.shim_pid and _pid_alive(self.shim_pid)):
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
        if not pid or not _pid_alive(pid):
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
    def exec(self, args: list[str], env: list[str] | None = None, cwd: str | None = None,
             timeout: float = 10.0) -> ExecOutput:
        """Run another program inside the running container (its namespaces, cgroup and caps)."""
        if not args:
            raise NativeError("exec needs a command")
        pid = self.pid or self._read_state().get("pid")
        if not pid or self.status() != "running":
            raise NativeError(f"container {self.id!r} is not running; cannot exec into it")
        proc = dict(self.config.get("process") or {})
        proc["args"] = list(args)
        proc["env"] = list(env if env is not None else proc.get("env") or [])
        proc["cwd"] = cwd or proc.get("cwd") or "/"
        ns_fds = []
        for t in ("user", "ipc", "uts", "net", "pid", "mnt"):  # user first: it owns the others
            a, b = f"/proc/{pid}/ns/{t}", f"/proc/self/ns/{t}"
            if os.stat(a).st_ino != os.stat(b).st_ino:
                ns_fds.append(os.open(a, os.O_RDONLY | os.O_CLOEXEC))
        procs = [os.open(p, os.O_WRONLY | os.O_CLOEXEC) for p in self.cgroup().join_files()
                 if os.path.exists(p)]
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        child = os.fork()
        if child == 0:
            _exec_child(proc, ns_fds, procs, out_w, err_w)  # never returns
        for fd in ns_fds + procs + [out_w, err_w]:
            os.close(fd)
        out, err = _collect(out_r, err_r, timeout, child)
        _, status = os.waitpid(child, 0)
        code, _sig = _status_code(status)
        return ExecOutput(code, out, err)


def _exec_child(proc: dict[str, Any], ns_fds: list[int], procs: list[int], out_w: int, err_w: int) -> None:
    code = 127
    try:
        sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
        for fd in ns_fds:
            sc.setns(fd, 0)
        grandchild = os.fork()  # the pid namespace applies to children only
        if grandchild == 0:
            try:
                sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
                null = os.open("/dev/null", os.O_RDONLY)
                os.dup2(null, 0)
                os.dup2(out_w, 1)
                os.dup2(err_w, 2)
                for fd in procs:
                    os.write(fd, b"0")
                for sig in (signal.SIGPIPE, signal.SIGINT, signal.SIGTERM):
                    signal.signal(sig, signal.SIG_DFL)
                os.chdir(proc["cwd"])
                exe = cinit.find_executable(proc["args"][0], proc["env"], proc["cwd"])
                cinit._drop_capabilities(proc)
                if proc.get("noNewPrivileges"):
                    sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
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
        code, _ = _status_code(status)
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



def _close_fds_except(keep: set[int]) -> None:
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
