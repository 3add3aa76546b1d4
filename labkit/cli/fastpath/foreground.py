"""``labkit run --rm`` the short way: one native container in the foreground, as ``runc run`` does it.

The CRI path (:mod:`labkit.runtime.native`: pod sandbox, create, start, follow the log, remove) is
what the kubelet drives and what ``labkit run -d`` uses. A container that lives exactly as long
as the command that started it needs less, and here the command *is* its parent:

1. find the image's unpacked layers in labkit's store (an image not built yet: return None);
2. build the same ``config.json`` (:func:`labkit.oci.spec.make_config`): new pid, mount, uts, ipc
   and network namespaces, the default capabilities, no_new_privs, the limits asked for;
3. mount a tmpfs for the container's folder (as ``/run`` is on most hosts; the writable layer
   lives there too), the overlay root in it, and create the cgroup (limits, device allow-list);
4. fork PID 1 of a new PID namespace, which runs :func:`labkit.oci.native.init.container_init`
   (namespaces, loopback up, mounts, pivot_root, hostname, cgroup, caps, exec) — the same code
   every native container runs;
5. copy its output (stdout and stderr together, as a container log keeps them) to our stdout and
   to the log, wait for it, count OOM kills, and remove everything it had.

While it runs, its records sit where the native backend keeps them (``container.json``, ``pid``,
``container.log``, the bundle with its ``config.json``), so ``labkit ps``, ``labkit logs``,
``labkit stop`` and ``labkit gc`` treat it like any other container (with no runtime
``state.json``, the backend removes it through its record: cgroup path, overlay, folder).
Every import here is paid on each ``labkit run``, so there are few: ``os``, ``marshal`` and the
labkit modules that reach libc through ``_ctypes``; not json, re, enum, pathlib, dataclasses or
the ``ctypes`` package (about 17 ms together, see ``benchmarks/README.md``).

:func:`run` returns None, having created nothing, whenever it cannot promise the CRI path's exact
behaviour (not root, an image not unpacked yet, a command the image lacks, a value to reject):
the caller then takes the CRI path, which builds, explains or refuses as usual.
"""

from __future__ import annotations

# the C module behind ``signal`` (which would import enum: ~3 ms)
import _signal as signal
import errno
import os
import time

from labkit.atomicfile import write_atomic
from labkit.images import lookup
from labkit.oci import cgroupfs, spec
from labkit.oci import syscalls as sc
from labkit.oci.native import init as cinit

LABELS = {"labkit.io/cli": "true", "labkit.io/rm": "true"}  # what labkit.cli.container's run sets
_NAMESPACES = ("pid", "mnt", "uts", "ipc", "net")




def _backend_dir() -> str:
    """``<state>/runtime/native``: where the native backend keeps its records (labkit.paths, as root)."""
    return os.path.join(os.environ.get("LABKIT_STATE") or "/run/labkit", "runtime", "native")



def _host_ready() -> bool:
    """The gate of :func:`labkit.runtime.host.can_run_real_containers`: Linux, root, namespaces."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or os.environ.get("LABKIT_PRETEND_NOT_ROOT"):
        return False
    return all(os.path.exists(f"/proc/self/ns/{k}") for k in _NAMESPACES)


def _in_layers(lowers: list[str], argv0: str, env: dict[str, str]) -> str | None:
    """Where the command is in the image (:func:`labkit.runtime.runc.find_executable`, looked up on
    the layers): its path inside the container, or None when the image lacks it."""
    if "/" in argv0:
        rel = argv0.lstrip("/")
        return argv0 if any(os.path.lexists(os.path.join(low, rel)) for low in lowers) else None
    for d in env.get("PATH", spec.DEFAULT_PATH).split(":"):
        if not d.startswith("/"):
            return None  # a relative PATH entry: found (or not) relative to the working directory
        rel = os.path.join(d.lstrip("/"), argv0)
        if any(os.path.lexists(os.path.join(low, rel)) for low in lowers):
            return "/" + rel
    return None



_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def to_json(value: object) -> str:
    """JSON text for records (dicts, lists, str, int, float, bool, None), as ``json.dumps`` would
    write it with ``ensure_ascii``; the json module itself costs ``labkit run`` ~5 ms to import."""
    if isinstance(value, str):
        if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
            return f'"{value}"'
        return '"' + "".join(_escape(c) for c in value) + '"'
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} has no JSON form")
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{to_json(str(k))}: {to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(to_json(v) for v in value) + "]"
    raise TypeError(f"{type(value).__name__} has no JSON form here")


def _escape(c: str) -> str:
    if c in _ESCAPES:
        return _ESCAPES[c]
    o = ord(c)
    if 0x20 <= o < 0x7F:
        return c
    if o > 0xFFFF:  # outside the BMP: a surrogate pair, as JSON spells it
        o -= 0x10000
        return f"\\u{0xD800 | (o >> 10):04x}\\u{0xDC00 | (o & 0x3FF):04x}"
    return f"\\u{o:04x}"


def _remove_tree(path: str) -> None:
    """``shutil.rmtree`` without importing shutil; ignores what is already gone."""
    for top, dirs, files in os.walk(path, topdown=False):
        for f in files:
            try:
                os.unlink(os.path.join(top, f))
            except OSError:
                pass
        for d in dirs:
            p = os.path.join(top, d)
            try:
                os.rmdir(p)
            except NotADirectoryError:
                os.unlink(p)  # a symlink to a directory
            except OSError:
                pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def _say(text: str) -> None:
    try:
        os.write(2, f"labkit: {text}\n".encode())
    except OSError:
        pass


def run(remove: bool, image: str, command: list[str], runtime: str | None = None, memory: str | None = None,
        cpus: str | None = None, pids_limit: int | None = None, name: str | None = None,
        hostname: str | None = None, env: list[str] | None = None) -> int | None:
    """Run one container to its end and return its exit code; None (nothing created) to decline."""
    if not remove or (runtime is not None and runtime.lower() != "native") or not _host_ready():
        return None
    mem = None
    if memory is not None:
        from labkit.units import memory_bytes  # imported only when asked: each import costs every start

        mem = memory_bytes(memory)
        if mem is None:
            return None
    quota = None
    if cpus is not None:
        try:
            n = float(cpus)
        except ValueError:
            return None
        if not 0 < n < 1e6:
            return None
        quota = int(n * 100_000)
    extra_env: dict[str, str] = {}
    for item in env or []:
        k, sep, v = item.partition("=")
        if not sep or not k:
            return None
        extra_env[k] = v
    img = lookup.find_unpacked(image, os.path.join(_backend_dir(), "images.cache"))
    if img is None:
        return None
    icfg = img["config"]
    argv = list(command) or list(icfg.get("Entrypoint") or []) + list(icfg.get("Cmd") or [])
    if not argv:
        return None
    envd: dict[str, str] = {}
    for item in icfg.get("Env") or []:
        k, _, v = item.partition("=")
        envd[k] = v
    envd.update(extra_env)
    exe = _in_layers(img["lowers"], argv[0], envd)
    if exe is None:
        return None  # the CRI path says which command the image lacks
    cid = os.urandom(16).hex()
    short = name or f"{image.split('/')[-1].split(':')[0]}-{os.urandom(3).hex()}"
    cgroups_path = f"/labkit/{cid}"
    limits = None  # no limits: the same linux.resources as an empty Resources, without the import
    if mem is not None or quota is not None or pids_limit is not None:
        from labkit.oci.resources import Resources

        limits = Resources(mem, quota, pids_limit=pids_limit)
    try:
        cfg = spec.make_config(argv, env=envd, cwd=icfg.get("WorkingDir") or "/",
                               hostname=spec.clean_hostname(hostname or short), rootfs="rootfs",
                               resources=limits, cgroups_path=cgroups_path)
    except spec.SpecError:
        return None
    return _Container(cid, short, image, img, cfg, memory, exe).run()


class _Container:
    """The container's folders, mounts and cgroup, from creation to removal."""

    def __init__(self, cid: str, name: str, image: str, img: dict, cfg: dict, memory: str | None,
                 exe: str) -> None:
        base = _backend_dir()
        self.id, self.name, self.image, self.img, self.cfg, self.memory = cid, name, image, img, cfg, memory
        self.exe = exe
        self.cdir = os.path.join(base, "containers", cid)
        self.bundle = os.path.join(self.cdir, "bundle")
        self.rootfs = os.path.join(self.bundle, "rootfs")
        self.cow = self.rootfs + ".cow"
        self.mounted = self.folder_mounted = False
        self.pid: int | None = None
        self.cgroup: cgroupfs.Cgroup | None = None

    def run(self) -> int:
        try:
            return self._run()
        except (OSError, cgroupfs.CgroupError) as exc:
            _say(f"[native] {exc}")
            return 125
        except KeyboardInterrupt:  # before the output was being copied: nothing ran yet worth waiting for
            if self.pid:
                try:
                    os.kill(self.pid, 9)
                except ProcessLookupError:
                    pass
                _wait(self.pid)
            _say("interrupted")
            return 130
        finally:
            self._remove()

    def _run(self) -> int:
        created = time.time()
        os.makedirs(self.cdir)
        self._mount_folder()
        for d in (self.bundle, self.rootfs, self.cow, self.cow + "/upper", self.cow + "/work"):
            os.mkdir(d)
        log = os.open(os.path.join(self.cdir, "container.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                      0o644)
        try:
            self._mount_root()
            self.cgroup = cgroupfs.Cgroup(self.cfg["linux"]["cgroupsPath"])
            joins = self.cgroup.create(self.cfg["linux"].get("resources"))
            out_r, out_w = os.pipe()
            # SIGTERM and SIGHUP (``timeout``, a closed terminal) stop the container like Ctrl-C does,
            # so that it is removed rather than left for ``labkit gc``; its init resets both
            for sig in (signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.default_int_handler)
            pid, sync_r = self._fork(joins, out_w)
            self.pid = pid
            self._record(pid, created)
            code = self._forward(out_r, log, pid)
        finally:
            os.close(log)
        oom = self.cgroup.oom_kills() if self.memory is not None and code != 0 else 0
        msgs = _messages(sync_r)
        if "R" not in msgs:
            if "E" in msgs:
                text = msgs["E"]
                _say(f"[native] {text}")
                return 127 if "executable" in text else 125
            if oom:
                _say("[native] the memory limit is too small: the kernel OOM-killed the container before its "
                     "program started; raise the limit")
            else:
                _say(f"[native] container init died before it was ready (exit status {code})")
            return 125
        reason = "OOMKilled" if oom and code != 0 else "Completed" if code == 0 else "Error"
        try:
            write_atomic(os.path.join(self.cdir, "exit.json"), to_json(
                {"exit_code": code, "reason": reason, "message": "", "oom_kills": oom, "finished_at": time.time()}))
        except OSError:
            pass  # removed under us (labkit stop, labkit gc)
        extra = f"; OOMKilled: the kernel killed it at the {self.memory} memory limit" if reason == "OOMKilled" else ""
        _say(f"ran on native, exit {code}{extra}")
        return code

    def _mount_folder(self) -> None:
        """A tmpfs for the container's folder (records, bundle, writable layer), as ``/run`` is on
        most hosts: creating and deleting a dozen files and folders on a disk file system costs a
        start ~3 ms, unmounting a tmpfs removes them all at once. Where tmpfs cannot be mounted the
        folder stays a plain one."""
        try:
            sc.mount("tmpfs", self.cdir, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "mode=755")
            self.folder_mounted = True
        except OSError:
            pass

    def _mount_root(self) -> None:
        """The overlay root: the image's layers below, this container's writable layer on top."""
        opts = f"lowerdir={':'.join(self.img['lowers'])},upperdir={self.cow}/upper,workdir={self.cow}/work"
        sc.mount("overlay", self.rootfs, "overlay", 0, opts)
        self.mounted = True

    def _fork(self, joins: list[str], out_w: int) -> tuple[int, int]:
        """PID 1 of a new PID namespace, running the container's init; returns (host pid, sync pipe)."""
        opened = [os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)]
        try:
            opened += [os.open(p, os.O_WRONLY | os.O_CLOEXEC) for p in joins]
            sync_r, sync_w = os.pipe()
            opened += [sync_w, out_w]
            own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            opened.append(own)
            # unshare(CLONE_NEWPID) moves only this process's *next child* into the new namespace
            sc.unshare(sc.CLONE_NEWPID)
            try:
                pid = os.fork()
                if pid == 0:
                    cinit.container_init(self.cfg, self.rootfs, sync_w, None, (opened[0], out_w, out_w),
                                         opened[1:len(joins) + 1], True, self.exe)  # never returns
            finally:
                sc.setns(own, sc.CLONE_NEWPID)
        finally:
            for fd in opened:
                os.close(fd)
        return pid, sync_r

    def _record(self, pid: int, created: float) -> None:
        """What the native backend keeps for a container (written while the child sets itself up)."""
        # compact JSON: with indent=, json falls back from its C encoder to Python (~1 ms here)
        write_atomic(os.path.join(self.bundle, "config.json"), to_json(self.cfg))
        write_atomic(os.path.join(self.cdir, "pid"), str(pid))
        write_atomic(os.path.join(self.cdir, "container.json"), to_json({
            "id": self.id, "sandbox_id": "", "name": self.name, "image": self.image, "image_ref": self.img["digest"],
            "created_at": created,
            "log_path": os.path.join(self.cdir, "container.log"), "labels": dict(LABELS), "annotations": {},
            "bundle": self.bundle, "cgroups_path": self.cfg["linux"]["cgroupsPath"], "runtime_id": self.id,
            "argv": self.cfg["process"]["args"], "shim": None, "started_at": time.time()}))

    def _forward(self, out_r: int, log: int, pid: int) -> int:
        """Copy the container's output to stdout and its log until it ends; return its exit code."""
        to_stdout, code = True, None
        try:
            while True:
                # Ctrl-C may land while reading or while writing: either way the container is
                # stopped (once: its pid is reaped after that) and what it says on its way out is copied
                try:
                    data = os.read(out_r, 65536)
                    if not data:
                        break
                    if to_stdout:
                        try:
                            os.write(1, data)
                        except OSError:
                            to_stdout = False  # stdout closed (a pipe into head): keep the log going
                    os.write(log, data)
                except KeyboardInterrupt:
                    if code is None:
                        code = self._stop(pid)
        finally:
            os.close(out_r)
        return code if code is not None else _wait(pid)

    def _stop(self, pid: int) -> int:
        """Ctrl-C: SIGTERM, then SIGKILL after 2 s (what ``labkit run`` does on the CRI path)."""
        try:
            os.kill(pid, 15)
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                got, status = os.waitpid(pid, os.WNOHANG)
                if got:
                    return _code(status)
                time.sleep(0.02)
        except ProcessLookupError:
            pass
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: no more waiting
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        return _wait(pid)

    def _remove(self) -> None:
        if self.cgroup is not None:
            try:
                self.cgroup.destroy()
            except cgroupfs.CgroupError as exc:
                _say(f"cleanup incomplete ({exc}); run: labkit gc")
        for target, used in ((self.rootfs, self.mounted), (self.cdir, self.folder_mounted)):
            if not used:
                continue
            try:
                sc.umount2(target)
            except OSError as exc:
                if exc.errno in (errno.EINVAL, errno.ENOENT):
                    continue  # unmounted already (``labkit stop`` removed the container meanwhile)
                try:
                    sc.umount2(target, sc.MNT_DETACH)
                except OSError as exc2:
                    _say(f"cleanup incomplete ({exc2}); run: labkit gc")
                    return  # never delete through a mounted root
        if self.folder_mounted:
            try:
                os.rmdir(self.cdir)
                return
            except FileNotFoundError:
                return
            except OSError:
                pass
        _remove_tree(os.path.join(self.cow, "upper"))
        _remove_files(self.cdir, ["bundle/rootfs.cow/work/work", "bundle/rootfs.cow/work", "bundle/rootfs.cow",
                                  "bundle/rootfs", "bundle/config.json", "bundle", "container.json",
                                  "container.log", "pid", "exit.json"])


def _remove_files(folder: str, names: list[str]) -> None:
    """Remove what we know is there (files and emptied folders, children first), then the folder;
    anything unexpected left behind gets the full walk."""
    for name in names:
        p = os.path.join(folder, name)
        try:
            os.unlink(p)
        except IsADirectoryError:
            try:
                os.rmdir(p)
            except OSError:
                pass
        except OSError:
            pass
    try:
        os.rmdir(folder)
    except FileNotFoundError:
        pass
    except OSError:
        _remove_tree(folder)


def _code(status: int) -> int:
    """0-255, 128+N for a signal: what a shell shows."""
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _wait(pid: int) -> int:
    while True:
        try:
            return _code(os.waitpid(pid, 0)[1])
        except ChildProcessError:
            return 255


def _messages(sync_r: int) -> dict[str, str]:
    """What the init said before it exec'd: ``R`` (ready) or ``E<error>``."""
    buf = b""
    try:
        while True:
            chunk = os.read(sync_r, 4096)
            if not chunk:
                break
            buf += chunk
    finally:
        os.close(sync_r)
    out: dict[str, str] = {}
    for line in buf.split(b"\n"):
        if line:
            out[chr(line[0])] = line[1:].decode(errors="replace")
    return out
