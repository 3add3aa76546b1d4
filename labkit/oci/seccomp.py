"""The default seccomp profile, in the OCI ``linux.seccomp`` format, and its loading.

Capabilities decide *who* may do a privileged thing; seccomp decides which system calls a
container may make at all. The default profile here has the effect of Docker's: every call not
on the allow list fails with ``EPERM``, and the calls that reach the kernel's most dangerous
corners (mount, kexec, module loading, reboot, bpf, keyctl, new namespaces, the clock ...) are
allowed only when the container is also given the capability that guards them. Like Docker,
labkit resolves those capability-gated groups when it writes ``config.json``, so the OCI file
holds a plain allow list that runc, crun and labkit's own runtime all enforce the same way.

Two choices are stricter than Docker's: ``ptrace`` (Docker allows it on kernels since 4.8) needs
``CAP_SYS_PTRACE``, and ``socket(AF_VSOCK)`` is refused as Docker refuses it.

Compiling uses the system's ``libseccomp`` (the library runc and crun use) through ``ctypes``;
the result is classic BPF that :meth:`Filter.load` installs with
``prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)``. libseccomp checks the architecture first and
kills a process that calls in with another one (an x86 ``int 0x80`` call on x86_64 included,
unless the profile lists that architecture).
"""

from __future__ import annotations

import os

from labkit.oci import syscalls as sc

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only
    from typing import Any

EPERM, ENOSYS = 1, 38

#: the calls every container may make (names that an architecture lacks are skipped there)
ALLOWED = """
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat
dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2
epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit exit_group
faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat
fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr
fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64
futex futex_time64 futex_waitv futimesat getcpu getcwd getdents getdents64
getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer
getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid getresgid32
getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt
get_thread_area gettid gettimeofday getuid getuid32 getxattr
inotify_add_watch inotify_init inotify_init1 inotify_rm_watch
io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set
io_setup io_submit io_uring_enter io_uring_register io_uring_setup ipc kill
landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr
link linkat listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64
madvise membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat
mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap
msgctl msgget msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep
newfstatat _newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2
pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2
prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2
read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq
rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo
sched_getaffinity sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min
sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity
sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select
semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg
sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32
setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32
setreuid setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area
set_tid_address setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack
signalfd signalfd4 sigprocmask sigreturn socketcall socketpair splice stat stat64
statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time
timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat
utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
""".split()

#: calls only the machine's own architecture family has
ARCH_ALLOWED: dict[str, list[str]] = {
    "x86_64": ["arch_prctl", "modify_ldt"],
    "aarch64": ["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
                "cacheflush", "set_tls"],
}

#: calls allowed only to a container that also holds the capability that guards them
BY_CAPABILITY: dict[str, list[str]] = {
    "CAP_SYS_ADMIN": ("bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie "
                      "mount mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd "
                      "setdomainname sethostname setns syslog umount umount2 unshare").split(),
    "CAP_SYS_BOOT": ["reboot", "kexec_load", "kexec_file_load"],
    "CAP_SYS_CHROOT": ["chroot"],
    "CAP_SYS_MODULE": ["init_module", "finit_module", "delete_module"],
    "CAP_SYS_PACCT": ["acct"],
    "CAP_SYS_PTRACE": ["ptrace", "kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
                       "process_vm_writev"],
    "CAP_SYS_RAWIO": ["iopl", "ioperm"],
    "CAP_SYS_TIME": ["settimeofday", "stime", "clock_settime", "clock_settime64"],
    "CAP_SYS_TTY_CONFIG": ["vhangup"],
    "CAP_SYS_NICE": ["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"],
    "CAP_SYSLOG": ["syslog"],
    "CAP_BPF": ["bpf"],
    "CAP_PERFMON": ["perf_event_open"],
    "CAP_DAC_READ_SEARCH": ["open_by_handle_at"],
}

#: what the default profile refuses that a container's root could otherwise try (the lab's list)
NOTABLE_DENIED = ["mount", "umount2", "pivot_root", "kexec_load", "kexec_file_load", "init_module",
                  "finit_module", "delete_module", "ptrace", "swapon", "swapoff", "reboot",
                  "open_by_handle_at", "bpf", "perf_event_open", "keyctl", "add_key", "request_key",
                  "unshare", "setns", "clock_settime", "acct", "userfaultfd", "personality (other personas)"]

#: the namespace flags a clone(2) may not carry without CAP_SYS_ADMIN (the mask Docker uses)
NAMESPACE_CLONE_FLAGS = 0x7E020000
AF_VSOCK = 40
#: personality(2) values programs use for themselves (PER_LINUX, PER_LINUX32, UNAME26 variants, query)
PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF]

#: ``uname -m`` -> the OCI architectures a profile lists (the native one first, then its 32-bit kin)
ARCHITECTURES: dict[str, list[str]] = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
}


class SeccompError(RuntimeError):
    """A profile that cannot be compiled or loaded here; the message says what to do."""


def machine() -> str:
    return os.uname().machine


def default_profile(capabilities: list[str], arch: str | None = None) -> dict[str, Any]:
    """The OCI ``linux.seccomp`` block for a container holding ``capabilities``."""
    arch = arch or machine()
    caps = set(capabilities)
    allow = list(ALLOWED) + ARCH_ALLOWED.get(arch, [])
    for cap, names in BY_CAPABILITY.items():
        if cap in caps:
            allow += [n for n in names if n not in allow]
    rules: list[dict[str, Any]] = [{"names": sorted(set(allow)), "action": "SCMP_ACT_ALLOW"}]
    rules.append({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                  "args": [{"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE"}]})
    for value in PERSONALITIES:
        rules.append({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": value, "op": "SCMP_CMP_EQ"}]})
    if "CAP_SYS_ADMIN" not in caps:
        # threads and processes, but no new namespaces; clone3 hides its flags in memory that a
        # filter cannot read, so it says ENOSYS and the C library falls back to clone
        rules.append({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 1 if arch.startswith("s390") else 0, "value": NAMESPACE_CLONE_FLAGS,
                                "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]})
        rules.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS})
    return {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": EPERM,
            "architectures": list(ARCHITECTURES.get(arch, [])), "syscalls": rules}


def allowed_names(profile: dict[str, Any]) -> set[str]:
    """Every call name the profile lets through in some form (with or without argument checks)."""
    return {n for r in profile.get("syscalls") or [] if r.get("action") == "SCMP_ACT_ALLOW"
            for n in r.get("names") or []}


# --- compiling with libseccomp ---------------------------------------------------------------
_ACTIONS = {"SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000,
            "SCMP_ACT_KILL_PROCESS": 0x80000000, "SCMP_ACT_TRAP": 0x00030000,
            "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000, "SCMP_ACT_LOG": 0x7FFC0000,
            "SCMP_ACT_ALLOW": 0x7FFF0000}
_OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
        "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
_NR_SCMP_ERROR = -1
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_lib: Any = None
_cache: dict[str, Filter] = {}


def _libseccomp() -> Any:
    global _lib
    if _lib is None:
        import ctypes

        try:
            lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
        except OSError as exc:
            raise SeccompError("libseccomp (Debian package libseccomp2, which runc and crun need too) is "
                               "missing, so the seccomp profile cannot be compiled: install it, or make "
                               "the container with seccomp='unconfined'") from exc
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                               ctypes.c_void_p]
        lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        _lib = lib
    return _lib


def _action(name: str, errno_ret: int | None, default_errno: int = EPERM) -> int:
    if name not in _ACTIONS:
        raise SeccompError(f"seccomp action {name!r} is not supported; use one of {', '.join(sorted(_ACTIONS))}")
    base = _ACTIONS[name]
    if name in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        base |= (default_errno if errno_ret is None else int(errno_ret)) & 0xFFFF
    return base


class _Prog(sc.Structure):  # struct sock_fprog
    _fields_ = [("len", sc.c_ushort), ("filter", sc.c_char_p)]


class Filter:
    """A compiled profile: the BPF program, ready for :meth:`load` (one prctl, fine after fork())."""

    def __init__(self, bpf: bytes) -> None:
        if not bpf or len(bpf) % 8:
            raise SeccompError(f"a seccomp program is a whole number of 8-byte instructions, not {len(bpf)} bytes")
        self.bpf = bpf
        self._prog = _Prog(len(bpf) // 8, bpf)  # the struct points into the bytes object it keeps
        self._addr = sc.addressof(self._prog)

    @property
    def instructions(self) -> int:
        return len(self.bpf) // 8

    def load(self) -> None:
        """Install the filter on the calling thread; from here on it holds for it and its children.
        The kernel requires no_new_privs or CAP_SYS_ADMIN at this point."""
        sc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, self._addr)


def _cache_dir() -> str:
    """``<state>/seccomp`` (labkit.paths.state_dir's rule, without importing pathlib on every start)."""
    base = os.environ.get("LABKIT_STATE") or (
        "/run/labkit" if os.geteuid() == 0 else os.path.expanduser("~/.local/state/labkit"))
    return os.path.join(base, "seccomp")


def compile_profile(profile: dict[str, Any]) -> Filter:
    """The OCI ``linux.seccomp`` block as a BPF filter.

    libseccomp needs ~20 ms for the default profile (three x86 ABIs), as long as a whole container
    start; the program is kept per process and on disk under the state folder, so only the first
    container with a given profile pays. The file starts with the profile it was made from, so a
    checksum collision can never hand a container someone else's filter."""
    key = repr(profile)
    hit = _cache.get(key)
    if hit is None:
        from zlib import crc32  # hashlib loads OpenSSL: 3-10 ms a start

        raw_key = f"{machine()}\n{key}".encode()
        path = os.path.join(_cache_dir(), f"{crc32(raw_key):08x}-{len(raw_key)}.bpf")
        bpf = b""
        try:
            with open(path, "rb") as f:
                stored = f.read()
            if stored.startswith(raw_key + b"\0"):
                bpf = stored[len(raw_key) + 1:]
        except OSError:
            pass
        if not bpf or len(bpf) % 8:
            bpf = _compile(profile)
            try:
                from labkit.atomicfile import write_atomic

                os.makedirs(os.path.dirname(path), exist_ok=True)
                write_atomic(path, raw_key + b"\0" + bpf)
            except OSError:
                pass  # a read-only state folder: compile again next time
        hit = _cache[key] = Filter(bpf)
    return hit


def _compile(profile: dict[str, Any]) -> bytes:
    import ctypes

    class _ArgCmp(ctypes.Structure):
        _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]

    lib = _libseccomp()
    default_errno = int(profile.get("defaultErrnoRet") or EPERM)
    default = _action(profile.get("defaultAction") or "SCMP_ACT_ERRNO", profile.get("defaultErrnoRet"))
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise SeccompError("seccomp_init failed: the default action is not valid here")
    try:
        arches = list(profile.get("architectures") or [])
        if arches and ARCHITECTURES.get(machine(), [None])[0] not in arches:
            raise SeccompError(f"the profile's architectures {arches} leave out this machine ({machine()}); "
                               "every call would be killed")
        for arch in arches:
            token = lib.seccomp_arch_resolve_name(arch.removeprefix("SCMP_ARCH_").lower().encode())
            if not token:
                raise SeccompError(f"unknown seccomp architecture {arch!r}")
            rc = lib.seccomp_arch_add(ctx, token)
            if rc < 0 and rc != -17:  # -EEXIST: the native one is there from the start
                raise SeccompError(f"cannot add architecture {arch}: {os.strerror(-rc)}")
        for rule in profile.get("syscalls") or []:
            action = _action(rule.get("action", ""), rule.get("errnoRet"), default_errno)
            if action == default:
                continue  # libseccomp refuses a rule that repeats the default
            args = rule.get("args") or []
            cmps = (_ArgCmp * max(1, len(args)))()
            for i, a in enumerate(args):
                op = a.get("op")
                if op not in _OPS:
                    raise SeccompError(f"seccomp argument operator {op!r} is not supported")
                cmps[i] = _ArgCmp(int(a["index"]), _OPS[op], int(a.get("value", 0)), int(a.get("valueTwo", 0)))
            for name in rule.get("names") or []:
                nr = lib.seccomp_syscall_resolve_name(name.encode())
                if nr == _NR_SCMP_ERROR:
                    continue  # not a call on any architecture libseccomp knows here (as runc does)
                rc = lib.seccomp_rule_add_array(ctx, action, nr, len(args), cmps)
                if rc < 0 and rc != -17:  # -EEXIST: listed twice
                    raise SeccompError(f"seccomp rule for {name}: {os.strerror(-rc)}")
        fd = os.memfd_create("labkit-seccomp", os.MFD_CLOEXEC)  # not a pipe: the program may pass 64 KiB
        try:
            rc = lib.seccomp_export_bpf(ctx, fd)
            if rc < 0:
                raise SeccompError(f"cannot export the seccomp filter: {os.strerror(-rc)}")
            return os.pread(fd, os.fstat(fd).st_size, 0)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)


def for_config(config: dict[str, Any]) -> Filter | None:
    """The compiled ``linux.seccomp`` of a bundle's config, or None when it has none."""
    profile = (config.get("linux") or {}).get("seccomp")
    return compile_profile(profile) if profile else None
