"""Known container escape attempts, as one script that runs *inside* a container.

It needs only Python's standard library, so a container whose ``/usr`` is the host's (read-only,
see :func:`labkit.oci.escape.host_tools_rootfs`) can run it under runc, crun and labkit's own
runtime alike; it also runs on the host, unconfined, to show each attempt is real. It takes one
JSON argument (what to aim at) and prints one JSON object: for each attempt, whether it
succeeded and the errno (or what it saw) when it did not. Nothing here changes the host when
run there: files are opened for writing but never written, a traced process is released at
once, and with ``"host": true`` it mounts nothing and makes no cgroup.

Attempts: ``chroot`` (the escape of lab 04), ``mount_disk`` (a node for the host's root disk,
then open it and mount it), ``load_module`` (init_module and finit_module), ``proc_sys``
(open ``/proc/sys/kernel/core_pattern`` for writing), ``ptrace`` (PTRACE_ATTACH to a host pid),
``cgroupfs`` (open a host cgroup's ``cgroup.procs`` for writing, make a cgroup, mount cgroupfs),
``unshare_user`` (a new user namespace, the usual first step of kernel exploits).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import sys

_SYS = {"x86_64": {"init_module": 175, "finit_module": 313},
        "aarch64": {"init_module": 105, "finit_module": 273}}
PTRACE_ATTACH, PTRACE_DETACH = 16, 17
CLONE_NEWUSER, CLONE_NEWNS = 0x10000000, 0x00020000
MS_RDONLY, MS_REC, MS_PRIVATE = 1, 0x4000, 0x40000

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]


def _err(code: int) -> dict:
    return {"ok": False, "errno": errno.errorcode.get(code, str(code))}


def _call(ret: int) -> dict:
    return {"ok": True} if ret >= 0 else _err(ctypes.get_errno())


def _in_child(fn, *args) -> dict:  # noqa: ANN001, ANN002
    """Run ``fn`` in a forked child (chroot and namespaces must not stick to this process)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            out = fn(*args)
        except OSError as exc:
            out = _err(exc.errno or 0)
        except BaseException as exc:  # noqa: BLE001
            out = {"ok": False, "errno": f"{exc.__class__.__name__}: {exc}"}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data or b'{"ok": false, "errno": "no answer"}')


def chroot_escape(host_file: str, jail: str) -> dict:
    os.chdir(jail)
    os.makedirs("lk-escape", exist_ok=True)
    os.chroot("lk-escape")  # the current directory is now above the root
    for _ in range(64):
        os.chdir("..")
    os.chroot(".")
    try:
        with open(host_file) as f:
            return {"ok": True, "read": f.read().strip()}
    except OSError as exc:
        return dict(_err(exc.errno or 0), root=sorted(os.listdir("/"))[:12])


def mount_disk(major: int, minor: int, fstype: str, scratch: str, try_mount: bool = True) -> dict:
    node = os.path.join(scratch, "lk-disk")
    out: dict = {}
    try:
        if os.path.lexists(node):
            os.unlink(node)
        os.mknod(node, 0o600 | 0o060000, os.makedev(major, minor))  # S_IFBLK
        out["mknod"] = "ok"
        try:
            fd = os.open(node, os.O_RDONLY)
            os.close(fd)
            out.update(ok=True, open="ok")
        except OSError as exc:
            out["open"] = errno.errorcode.get(exc.errno or 0, "?")
    except OSError as exc:
        out["mknod"] = errno.errorcode.get(exc.errno or 0, "?")
    if not try_mount:
        os.unlink(node)
        return out
    target = os.path.join(scratch, "lk-mnt")
    os.makedirs(target, exist_ok=True)
    # in a private mount namespace when it can be made (never on the host's own table)
    res = _in_child(_mount_private, node if out.get("mknod") == "ok" else "/dev/null", target, fstype)
    out["mount"] = "ok" if res.get("ok") else res.get("errno")
    out["ok"] = bool(out.get("ok") or res.get("ok"))
    if os.path.lexists(node):
        os.unlink(node)
    if not out["ok"]:
        out["errno"] = out["mount"]
    return out


def _mount_private(source: str, target: str, fstype: str) -> dict:
    if libc.unshare(CLONE_NEWNS) < 0:
        return _err(ctypes.get_errno())
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) < 0:  # nothing propagates back
        return _err(ctypes.get_errno())
    return _call(libc.mount(source.encode(), target.encode(), fstype.encode(), MS_RDONLY, None))


def load_module() -> dict:
    nrs = _SYS.get(os.uname().machine)
    if nrs is None:
        return {"ok": False, "errno": "unknown architecture"}
    image = ctypes.create_string_buffer(64)  # not an ELF module: a kernel that gets this far says ENOEXEC
    res = _call(libc.syscall(nrs["init_module"], image, ctypes.c_ulong(64), b""))
    fd = os.open("/proc/self/exe", os.O_RDONLY)
    try:
        res["finit_module"] = _call(libc.syscall(nrs["finit_module"], fd, b"", 0)).get("errno", "ok")
    finally:
        os.close(fd)
    return res


def proc_sys() -> dict:
    fd = os.open("/proc/sys/kernel/core_pattern", os.O_WRONLY)  # never written
    os.close(fd)
    return {"ok": True}


def ptrace(pid: int) -> dict:
    if libc.ptrace(PTRACE_ATTACH, pid, None, None) < 0:
        return _err(ctypes.get_errno())
    os.waitpid(pid, 0x40000000)  # __WALL: the stop that the attach causes
    libc.ptrace(PTRACE_DETACH, pid, None, None)
    return {"ok": True}


def cgroupfs(procs_file: str, scratch: str, try_mount: bool = True) -> dict:
    out: dict = {"ok": False}
    try:
        fd = os.open(procs_file, os.O_WRONLY)  # never written
        os.close(fd)
        out.update(ok=True, open="ok")
    except OSError as exc:
        out["open"] = errno.errorcode.get(exc.errno or 0, "?")
    if not try_mount:
        return out
    try:
        os.mkdir("/sys/fs/cgroup/lk-escape")
        os.rmdir("/sys/fs/cgroup/lk-escape")
        out.update(ok=True, mkdir="ok")
    except OSError as exc:
        out["mkdir"] = errno.errorcode.get(exc.errno or 0, "?")
    target = os.path.join(scratch, "lk-cg")
    os.makedirs(target, exist_ok=True)
    res = _in_child(_mount_private, "cgroup2", target, "cgroup2")
    out["mount"] = "ok" if res.get("ok") else res.get("errno")
    out["ok"] = bool(out["ok"] or res.get("ok"))
    if not out["ok"]:
        out["errno"] = out["mount"]
    return out


def unshare_user() -> dict:
    return _call(libc.unshare(CLONE_NEWUSER))


def main(argv: list[str]) -> dict:
    aim = json.loads(argv[1])
    scratch = aim.get("scratch", "/tmp")
    confined = not aim.get("host")  # on the host: no mount, no mkdir, only the opens and the calls
    out: dict = {}
    steps = {
        "chroot": lambda: _in_child(chroot_escape, aim["host_file"], aim.get("jail", scratch)),
        "mount_disk": lambda: mount_disk(aim["disk"][0], aim["disk"][1], aim["disk"][2], aim.get("dev", "/dev"),
                                        confined),
        "load_module": lambda: _in_child(load_module),
        "proc_sys": proc_sys,
        "ptrace": lambda: ptrace(int(aim["pid"])),
        "cgroupfs": lambda: cgroupfs(aim["cgroup_procs"], scratch, confined),
        "unshare_user": lambda: _in_child(unshare_user),
    }
    for name in aim.get("only") or steps:
        try:
            out[name] = steps[name]()
        except OSError as exc:
            out[name] = _err(exc.errno or 0)
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv)))
