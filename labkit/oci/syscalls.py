"""The Linux system calls a container runtime needs, reached through ctypes.

Python 3.11 has no ``os.unshare``/``os.setns``, and none of ``mount``, ``pivot_root`` or
``capset``. runc reaches them from Go and C; labkit reaches them through ``libc`` so that the
whole runtime stays readable Python. Every wrapper raises ``OSError`` with the real errno.

The calls go through ``_ctypes``, the C half of the ``ctypes`` package, with the handful of C
types they need declared here: the ``ctypes`` package itself builds some forty types and
callbacks at import, which costs ``labkit run`` ~2 ms (a tenth of what runc needs for a whole
container). Should ``_ctypes`` ever lack a piece used here, the ``ctypes`` package is used.
"""

from __future__ import annotations

import os
import sys

try:
    import _ctypes
    from _ctypes import (
        FUNCFLAG_CDECL,
        FUNCFLAG_USE_ERRNO,
        CFuncPtr,
        Structure,
        _SimpleCData,
        addressof,
        byref,
        get_errno,
        sizeof,
    )

    class c_int(_SimpleCData):
        _type_ = "i"

    class c_uint(_SimpleCData):
        _type_ = "I"

    class c_ushort(_SimpleCData):
        _type_ = "H"

    class c_long(_SimpleCData):
        _type_ = "l"

    class c_ulong(_SimpleCData):
        _type_ = "L"

    class c_char_p(_SimpleCData):
        _type_ = "z"

    class c_char(_SimpleCData):
        _type_ = "c"

    c_uint32, c_size_t = c_uint, c_ulong  # Linux: int is 32 bits, size_t is unsigned long

    class _Function(CFuncPtr):
        _flags_ = FUNCFLAG_CDECL | FUNCFLAG_USE_ERRNO
        _restype_ = c_int

    class _CLibrary:
        """What ``ctypes.CDLL(None, use_errno=True)`` gives: ``lib.name`` is the C function."""

        def __init__(self) -> None:
            self._handle = _ctypes.dlopen(None, os.RTLD_NOW)

        def __getattr__(self, name: str) -> _Function:
            if name.startswith("_"):
                raise AttributeError(name)
            fn = _Function((name, self))
            setattr(self, name, fn)
            return fn

    def _open_libc() -> object:
        return _CLibrary()
except (ImportError, AttributeError, TypeError):  # pragma: no cover - another Python: the full package
    import ctypes
    from ctypes import (  # noqa: F401 - the same names as above
        Structure,
        addressof,
        byref,
        c_char,
        c_char_p,
        c_int,
        c_long,
        c_size_t,
        c_uint,
        c_uint32,
        c_ulong,
        c_ushort,
        get_errno,
        sizeof,
    )

    def _open_libc() -> object:
        return ctypes.CDLL(None, use_errno=True)

# namespace flags (linux/sched.h)
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

#: OCI namespace type -> clone flag, and the /proc/<pid>/ns link name
NAMESPACE_FLAGS: dict[str, int] = {
    "pid": CLONE_NEWPID,
    "network": CLONE_NEWNET,
    "mount": CLONE_NEWNS,
    "ipc": CLONE_NEWIPC,
    "uts": CLONE_NEWUTS,
    "user": CLONE_NEWUSER,
    "cgroup": CLONE_NEWCGROUP,
}
NAMESPACE_PROC_NAMES: dict[str, str] = {
    "pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
    "user": "user", "cgroup": "cgroup",
}

# mount flags (linux/mount.h)
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2

# prctl options
PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_SET_CHILD_SUBREAPER = 36
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
_SYS_CAPGET = {"x86_64": 125, "aarch64": 90, "riscv64": 90, "ppc64le": 183, "s390x": 184}
_SYS_CAPSET = {"x86_64": 126, "aarch64": 91, "riscv64": 91, "ppc64le": 184, "s390x": 185}

_libc: object | None = None
# not platform.machine(): importing platform costs a container start ~1 ms (no os.uname on Windows,
# where this module must still import)
_MACHINE = os.uname().machine if hasattr(os, "uname") else ""


def libc() -> object:

    """The C library (``lib.NAME(...)`` calls NAME), loaded once with errno tracking on, argument
    types declared up front (declared types let ctypes convert plain ints itself, which keeps a
    container start fast)."""
    global _libc
    if _libc is None:
        # dlopen(NULL): the C library this Python is already linked against. (find_library would
        # run `ldconfig -p` in a subprocess, which costs more than a whole container start.)
        lib = _open_libc()
        lib.prctl.argtypes = [c_int, c_ulong, c_ulong, c_ulong, c_ulong]
        lib.prctl.restype = c_int
        lib.mount.argtypes = [c_char_p, c_char_p, c_char_p, c_ulong, c_char_p]
        lib.mount.restype = c_int
        lib.umount2.argtypes = [c_char_p, c_int]
        lib.unshare.argtypes = [c_int]
        lib.setns.argtypes = [c_int, c_int]
        _libc = lib
    return _libc


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _b(s: str | bytes | None) -> bytes | None:
    if s is None:
        return None
    return s if isinstance(s, bytes) else os.fsencode(s)


def unshare(flags: int) -> None:
    """Move the calling process into new namespaces (``CLONE_NEW*`` flags)."""
    _check(libc().unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    """Join the namespace that ``fd`` (an open ``/proc/<pid>/ns/*`` or bind-mounted file) names."""
    _check(libc().setns(fd, nstype), "setns")


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    """mount(2). ``source``/``fstype``/``data`` may be None."""
    if libc().mount(_b(source), _b(target), _b(fstype), flags, _b(data)) < 0:
        _check(-1, f"mount {fstype or ''} {source or ''} on {target}")


def umount2(target: str, flags: int = 0) -> None:
    if libc().umount2(_b(target), flags) < 0:
        _check(-1, f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2): glibc has no wrapper, so call it by number."""
    nr = _SYS_PIVOT_ROOT.get(_MACHINE)
    if nr is None:
        raise OSError(38, f"pivot_root: unknown syscall number on {_MACHINE}")
    _check(libc().syscall(c_long(nr), _b(new_root), _b(put_old)), "pivot_root")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(libc().sethostname(raw, c_size_t(len(raw))), "sethostname")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    ret = libc().prctl(option, arg2, arg3, arg4, arg5)
    return ret if ret >= 0 else _check(ret, "prctl")


class _CapHeader(Structure):
    _fields_ = [("version", c_uint32), ("pid", c_int)]


class _CapData(Structure):
    _fields_ = [("effective", c_uint32), ("permitted", c_uint32),
                ("inheritable", c_uint32)]


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def capget(pid: int = 0) -> tuple[int, int, int]:
    """(effective, permitted, inheritable) capability masks of ``pid`` (0 = caller)."""
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_CapData * 2)()
    _check(libc().syscall(c_long(_SYS_CAPGET[_MACHINE]), byref(hdr), data), "capget")
    def join(attr: str) -> int:
        return getattr(data[0], attr) | (getattr(data[1], attr) << 32)
    return join("effective"), join("permitted"), join("inheritable")


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set the caller's capability sets from 64-bit masks."""
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in (0, 1):
        data[i].effective = (effective >> (32 * i)) & 0xFFFFFFFF
        data[i].permitted = (permitted >> (32 * i)) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> (32 * i)) & 0xFFFFFFFF
    _check(libc().syscall(c_long(_SYS_CAPSET[_MACHINE]), byref(hdr), data), "capset")


SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def link_up(name: str) -> None:
    """``ip link set NAME up`` without running ``ip``: read the interface flags, set IFF_UP.

    Two ioctls on a datagram socket with a ``struct ifreq`` (16 bytes of name, then the flags as
    a short); used for ``lo`` in a container's new network namespace."""
    lib = libc()
    fd = lib.socket(2, 2 | os.O_CLOEXEC, 0)  # AF_INET, SOCK_DGRAM
    _check(fd, "socket")
    try:
        req = (c_char * 40)()
        req.raw = name.encode()[:15].ljust(40, b"\0")
        _check(lib.ioctl(fd, c_ulong(SIOCGIFFLAGS), req), f"reading the flags of {name}")
        raw = req.raw
        flags = int.from_bytes(raw[16:18], sys.byteorder) | IFF_UP
        req.raw = raw[:16] + flags.to_bytes(2, sys.byteorder) + raw[18:]
        _check(lib.ioctl(fd, c_ulong(SIOCSIFFLAGS), req), f"setting {name} up")
    finally:
        os.close(fd)


def chroot(path: str) -> None:
    os.chroot(path)
