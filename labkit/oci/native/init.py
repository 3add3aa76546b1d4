"""What runs inside the new container process before the user's program: runc's ``init``.

Everything here happens in a forked child that is PID 1 of a fresh PID namespace. In order:
leave or join namespaces, make every mount private, bind the root file system onto itself, mount
/proc, /dev (with device nodes), /dev/pts, /dev/shm, /sys and the bundle's mounts, ``pivot_root``
into it and detach the old root (so nothing outside stays reachable), set the hostname, join the
cgroups, drop capabilities, set no_new_privs, and finally ``execve`` the program. Errors go back
to the runtime over a pipe as one line, so the caller gets a clear message instead of a dead child.

This module must not import anything lazily: it runs after ``fork()``.
"""

from __future__ import annotations

# the C module behind ``signal``: the same calls without its enum wrappers (importing enum costs
# ``labkit run`` ~3 ms, and the container's init only needs to reset handlers to SIG_DFL)
import _signal as signal
import errno
import os
import stat

try:  # Unix only; absent on Windows, where the package must still import
    import resource
except ImportError:  # pragma: no cover
    resource = None  # type: ignore[assignment]

from labkit.oci import capabilities as caps
from labkit.oci import seccomp as seccomp_filter
from labkit.oci import syscalls as sc
from labkit.oci.spec import DEFAULT_DEVICES

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs a container start ~2 ms
    from typing import Any

_FLAG_OPTS = {
    "ro": (sc.MS_RDONLY, False), "rw": (sc.MS_RDONLY, True), "nosuid": (sc.MS_NOSUID, False),
    "suid": (sc.MS_NOSUID, True), "nodev": (sc.MS_NODEV, False), "dev": (sc.MS_NODEV, True),
    "noexec": (sc.MS_NOEXEC, False), "exec": (sc.MS_NOEXEC, True), "sync": (sc.MS_SYNCHRONOUS, False),
    "async": (sc.MS_SYNCHRONOUS, True), "dirsync": (sc.MS_DIRSYNC, False), "remount": (sc.MS_REMOUNT, False),
    "mand": (sc.MS_MANDLOCK, False), "nomand": (sc.MS_MANDLOCK, True), "noatime": (sc.MS_NOATIME, False),
    "atime": (sc.MS_NOATIME, True), "nodiratime": (sc.MS_NODIRATIME, False),
    "diratime": (sc.MS_NODIRATIME, True), "bind": (sc.MS_BIND, False), "rbind": (sc.MS_BIND | sc.MS_REC, False),
    "relatime": (sc.MS_RELATIME, False), "norelatime": (sc.MS_RELATIME, True),
    "strictatime": (sc.MS_STRICTATIME, False), "nostrictatime": (sc.MS_STRICTATIME, True),
}
_PROPAGATION = {
    "private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC, "shared": sc.MS_SHARED,
    "rshared": sc.MS_SHARED | sc.MS_REC, "slave": sc.MS_SLAVE, "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}


class InitError(Exception):
    """A failure inside the container's init; its text is sent to the runtime verbatim."""


def parse_options(options: list[str]) -> tuple[int, list[int], str]:
    """(mount flags, propagation flags, data string) from OCI mount options."""
    flags = 0
    prop: list[int] = []
    data: list[str] = []
    for o in options:
        if o in _FLAG_OPTS:
            bit, clear = _FLAG_OPTS[o]
            flags = flags & ~bit if clear else flags | bit
        elif o in _PROPAGATION:
            prop.append(_PROPAGATION[o])
        else:
            data.append(o)
    return flags, prop, ",".join(data)


def _inside(rootfs: str, path: str) -> str:
    """``path`` (a container path) as a host path under ``rootfs``, refusing symlink escapes.

    Only the components below ``rootfs`` can be links the image planted, so only they are looked
    at (one lstat each, stopping at the first that does not exist yet); a link among them gets the
    full ``realpath`` check. (realpath of every target walked the whole host path: ~1 ms a start.)
    """
    target = os.path.normpath(os.path.join(rootfs, path.lstrip("/")))
    prefix = rootfs.rstrip("/") + "/"
    if target != rootfs and not target.startswith(prefix):
        raise InitError(f"mount destination {path} resolves outside the container root")
    cur = rootfs
    for part in target[len(prefix):].split("/") if target != rootfs else []:
        cur = f"{cur}/{part}"
        try:
            is_link = stat.S_ISLNK(os.lstat(cur).st_mode)
        except OSError:
            break  # missing: created below as a plain directory or file
        if is_link:
            real, root_real = os.path.realpath(target), os.path.realpath(rootfs)
            if real != root_real and not real.startswith(root_real.rstrip("/") + "/"):
                raise InitError(f"mount destination {path} resolves outside the container root")
            break
    return target


def _mount_one(rootfs: str, m: dict[str, Any]) -> None:
    kind = m.get("type") or ""
    dest = _inside(rootfs, m["destination"])
    flags, prop, data = parse_options(list(m.get("options") or []))
    if kind == "cgroup":
        return  # cgroup namespaces are not part of labkit's runtime; the mount is skipped
    if flags & sc.MS_BIND:
        src = m["source"]
        if not os.path.exists(src):
            raise InitError(f"bind mount source {src} does not exist")
        if os.path.isdir(src):
            os.makedirs(dest, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            if not os.path.exists(dest):
                open(dest, "a").close()
        sc.mount(src, dest, None, flags & (sc.MS_BIND | sc.MS_REC))
        extra = flags & ~(sc.MS_BIND | sc.MS_REC)
        if extra:
            sc.mount(None, dest, None, sc.MS_REMOUNT | sc.MS_BIND | extra | _locked_flags(dest))
    else:
        os.makedirs(dest, exist_ok=True)
        try:
            sc.mount(m.get("source") or kind, dest, kind, flags, data or None)
        except OSError as exc:
            if kind == "sysfs" and exc.errno == errno.EPERM:
                # sysfs refuses a netns we joined but do not own; a read-only bind is the runc answer
                sc.mount("/sys", dest, None, sc.MS_BIND | sc.MS_REC)
                sc.mount(None, dest, None,
                         sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | sc.MS_REC | _locked_flags(dest))
            elif kind == "mqueue" and exc.errno in (errno.EPERM, errno.ENODEV):
                pass  # no mqueue support; nothing in the labs needs it
            else:
                raise
    for p in prop:
        sc.mount(None, dest, None, p)


def _locked_flags(path: str) -> int:
    """The flags a remount must keep: in a user namespace the kernel refuses to clear
    nosuid/nodev/noexec/atime flags that a more privileged namespace set."""
    try:
        f = os.statvfs(path).f_flag
    except OSError:
        return 0
    out = 0
    for st_bit, ms_bit in ((os.ST_NOSUID, sc.MS_NOSUID), (os.ST_NODEV, sc.MS_NODEV), (os.ST_NOEXEC, sc.MS_NOEXEC),
                           (os.ST_NOATIME, sc.MS_NOATIME), (os.ST_NODIRATIME, sc.MS_NODIRATIME),
                           (os.ST_RELATIME, sc.MS_RELATIME)):
        if f & st_bit:
            out |= ms_bit
    return out


def _make_devices(rootfs: str, devices: list[dict[str, Any]]) -> None:
    devdir = os.path.join(rootfs, "dev")
    os.makedirs(devdir, exist_ok=True)
    old_umask = os.umask(0)  # /dev/null must be 0666, not 0666 & ~umask
    try:
        _make_device_nodes(rootfs, devices)
    finally:
        os.umask(old_umask)
    links = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
             "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx", "core": "/proc/kcore"}
    for name, target in links.items():
        p = os.path.join(devdir, name)
        if not os.path.lexists(p):
            os.symlink(target, p)


def _make_device_nodes(rootfs: str, devices: list[dict[str, Any]]) -> None:
    seen = set()
    for d in DEFAULT_DEVICES + devices:
        if d["path"] in seen:
            continue
        seen.add(d["path"])
        target = _inside(rootfs, d["path"])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.lexists(target):
            os.unlink(target)
        mode = d.get("fileMode", 0o666) | (stat.S_IFCHR if d.get("type", "c") in ("c", "u") else stat.S_IFBLK)
        try:
            os.mknod(target, mode, os.makedev(d["major"], d["minor"]))
            if d.get("uid", 0) or d.get("gid", 0):
                os.chown(target, d.get("uid", 0), d.get("gid", 0))
        except PermissionError:
            # no CAP_MKNOD (user namespaces): bind the host's node instead, as runc does
            open(target, "a").close()
            sc.mount(d["path"], target, None, sc.MS_BIND)


def _mask_paths(masked: list[str], readonly: list[str]) -> None:
    for p in masked:
        if not os.path.lexists(p):
            continue
        if os.path.isdir(p):
            sc.mount("tmpfs", p, "tmpfs", sc.MS_RDONLY)
        else:
            sc.mount("/dev/null", p, None, sc.MS_BIND)
    for p in readonly:
        if not os.path.lexists(p):
            continue
        sc.mount(p, p, None, sc.MS_BIND | sc.MS_REC)
        sc.mount(None, p, None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | sc.MS_REC | _locked_flags(p))


def find_executable(name: str, env: list[str], cwd: str, hint: str | None = None) -> str:
    """Resolve ``name`` the way execvp does, inside the container; clear error when absent.

    ``hint``: where the runtime found ``name`` first on the image's layers, looking along the same
    PATH. If it is an executable file here, it is what the search would return (no earlier PATH
    folder had the name in any layer), and the lookups in a fresh overlay (~1 ms) are skipped.
    """
    if hint and "/" not in name and os.path.isfile(hint) and os.access(hint, os.X_OK):
        return hint
    if "/" in name:
        path = name if name.startswith("/") else os.path.join(cwd, name)
        if not os.path.exists(path):
            raise InitError(f"executable not found in image: {name!r} does not exist")
        if not os.access(path, os.X_OK) or os.path.isdir(path):
            raise InitError(f"{name!r} in the image is not executable (permission denied)")
        return path
    search = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for e in env:
        if e.startswith("PATH="):
            search = e[5:]
    for d in search.split(":"):
        cand = os.path.join(d or ".", name)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    raise InitError(f"executable not found in image: {name!r} is not in $PATH ({search})")


def _drop_capabilities(proc: dict[str, Any]) -> None:
    spec_caps = proc.get("capabilities") or {}
    bounding = caps.mask(spec_caps.get("bounding"))
    top = caps.last_cap()
    for bit in range(top + 1):
        if not bounding >> bit & 1:
            sc.prctl(sc.PR_CAPBSET_DROP, bit)
    user = proc.get("user") or {}
    uid, gid = int(user.get("uid", 0)), int(user.get("gid", 0))
    sc.prctl(sc.PR_SET_KEEPCAPS, 1)
    os.setgroups([int(g) for g in user.get("additionalGids") or []])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    sc.capset(caps.mask(spec_caps.get("effective")), caps.mask(spec_caps.get("permitted")),
              caps.mask(spec_caps.get("inheritable")))
    try:
        sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
        for name in spec_caps.get("ambient") or []:
            sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_RAISE, caps.CAPABILITIES[caps.normalize(name)])
    except OSError:
        pass  # kernels before 4.3 have no ambient set


def confine(proc: dict[str, Any], syscall_filter: seccomp_filter.Filter | None) -> None:
    """The last steps before exec, in runc's order: capabilities, no_new_privs, seccomp.

    With no_new_privs the filter goes on last, so the calls that drop capabilities need not be on
    its allow list. Without it the kernel only takes a filter from a process with CAP_SYS_ADMIN,
    so then, as runc does, the filter goes on before the capabilities are dropped."""
    nnp = bool(proc.get("noNewPrivileges"))
    if syscall_filter is not None and not nnp:
        syscall_filter.load()
    _drop_capabilities(proc)
    if nnp:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
        if syscall_filter is not None:
            syscall_filter.load()


def container_init(config: dict[str, Any], rootfs: str, sync_fd: int, start_fd: int | None,
                   stdio: tuple[int, int, int], cgroup_procs: list[int], die_with_parent: bool,
                   executable_hint: str | None = None,
                   syscall_filter: seccomp_filter.Filter | None = None) -> None:
    """Set the container up and exec its program. Never returns: exec or ``os._exit``.

    ``syscall_filter``: ``linux.seccomp`` compiled before fork() (compiled here if not given)."""
    code = 1
    try:
        proc = config.get("process") or {}
        linux = config.get("linux") or {}
        if syscall_filter is None and linux.get("seccomp"):
            # a caller that did not compile it: now, while the host's files (the compiled-filter
            # cache, Python's own modules) are still reachable, i.e. before pivot_root
            syscall_filter = seccomp_filter.for_config(config)
        if die_with_parent:
            sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
        for sig in (signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP,
                    signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        for target, fd in enumerate(stdio):
            if fd != target:
                os.dup2(fd, target)
        os.setsid()
        # namespaces: join the ones with a path, create the rest (pid was done by the shim)
        new_flags = 0
        for ns in linux.get("namespaces") or []:
            t = ns.get("type")
            if t == "pid":
                continue
            if t == "user":
                continue  # the shim made it before the PID namespace
            if ns.get("path"):
                try:
                    fd = os.open(ns["path"], os.O_RDONLY | os.O_CLOEXEC)
                except OSError as exc:
                    raise InitError(f"cannot open {t} namespace {ns['path']}: {exc.strerror}") from exc
                try:
                    sc.setns(fd, sc.NAMESPACE_FLAGS[t])
                finally:
                    os.close(fd)
            else:
                new_flags |= sc.NAMESPACE_FLAGS[t]
        if new_flags:
            sc.unshare(new_flags)
        if new_flags & sc.CLONE_NEWNET:
            sc.link_up("lo")  # a new network namespace starts with loopback down; runc brings it up too
        has_mntns = any(ns.get("type") == "mount" for ns in linux.get("namespaces") or [])
        if not has_mntns:
            raise InitError("a container without a mount namespace cannot pivot_root; add 'mount'")
        # mounts
        prop = {"shared": sc.MS_SHARED, "slave": sc.MS_SLAVE, "private": sc.MS_PRIVATE}.get(
            (linux.get("rootfsPropagation") or "private").lstrip("r"), sc.MS_PRIVATE)
        sc.mount(None, "/", None, sc.MS_REC | prop)
        sc.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC)
        dev_is_tmpfs = False
        for m in config.get("mounts") or []:
            _mount_one(rootfs, m)
            if m.get("destination") == "/dev":
                dev_is_tmpfs = True
                # /dev/pts etc. follow; create the nodes as soon as /dev exists
                _make_devices(rootfs, list(linux.get("devices") or []))
        if not dev_is_tmpfs:
            os.makedirs(os.path.join(rootfs, "dev"), exist_ok=True)
        # pivot_root: the bundle's root becomes "/", the old root is detached and unreachable
        os.chdir(rootfs)
        sc.pivot_root(".", ".")
        sc.umount2(".", sc.MNT_DETACH)
        os.chdir("/")
        _mask_paths(list(linux.get("maskedPaths") or []), list(linux.get("readonlyPaths") or []))
        if (config.get("root") or {}).get("readonly"):
            sc.mount(None, "/", None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | _locked_flags("/"))
        if config.get("hostname") and any(ns.get("type") == "uts" for ns in linux.get("namespaces") or []):
            sc.sethostname(config["hostname"])
        for rl in proc.get("rlimits") or [] if resource is not None else []:
            kind = getattr(resource, rl["type"], None)
            if kind is not None:
                resource.setrlimit(kind, (int(rl["soft"]), int(rl["hard"])))
        cwd = proc.get("cwd") or "/"
        try:
            os.chdir(cwd)
        except OSError as exc:
            raise InitError(f"working directory {cwd} does not exist in the image") from exc
        args = list(proc.get("args") or [])
        if not args:
            raise InitError("process.args is empty: the container has no command")
        env = list(proc.get("env") or [])
        exe = find_executable(args[0], env, cwd, executable_hint)
        # cgroups: join with "0" (= this process) through files opened before pivot_root
        for fd in cgroup_procs:
            try:
                os.write(fd, b"0")
            except OSError as exc:
                raise InitError(f"cannot join cgroup: {exc.strerror}") from exc
            os.close(fd)
        confine(proc, syscall_filter)
        env_map: dict[str, str] = {}
        for e in env:
            k, _, v = e.partition("=")
            env_map[k] = v
        os.write(sync_fd, b"R\n")
        if start_fd is not None:
            got = os.read(start_fd, 1)
            if not got:
                os._exit(0)  # the runtime went away without starting us
        code = 127
        # everything above 2 closes at exec (sync pipe included: EOF tells the runtime exec worked)
        try:
            sc.libc().close_range(sc.c_uint(3), sc.c_uint(0xFFFFFFFF), sc.c_int(4))
        except (AttributeError, OSError):
            pass
        os.execve(exe, args, env_map)
    except InitError as exc:
        _report(sync_fd, str(exc))
    except OSError as exc:
        _report(sync_fd, f"container init failed: {exc}")
    except BaseException as exc:  # noqa: BLE001 - must never unwind into the parent's stack
        _report(sync_fd, f"container init failed: {exc.__class__.__name__}: {exc}")
    finally:
        os._exit(code)


def _report(fd: int, message: str) -> None:
    try:
        os.write(fd, b"E" + message.replace("\n", " ").encode()[:3000] + b"\n")
    except OSError:
        pass
