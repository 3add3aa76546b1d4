"""Linux capability names and numbers, and the default set a container keeps.

Root in a container is not root on the host partly because the runtime drops most capabilities
before it starts the user's program. The default list is the one Docker and runc use.
"""

from __future__ import annotations

CAPABILITIES: dict[str, int] = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
    "CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
    "CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}
NAMES: dict[int, str] = {v: k for k, v in CAPABILITIES.items()}

#: what Docker and runc leave a container's root with
DEFAULT_CAPABILITIES: list[str] = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]


_LAST_CAP: int | None = None


def last_cap() -> int:
    """The highest capability number this kernel knows (read once per process)."""
    global _LAST_CAP
    if _LAST_CAP is None:
        try:
            with open("/proc/sys/kernel/cap_last_cap") as f:
                _LAST_CAP = int(f.read())
        except (OSError, ValueError):
            _LAST_CAP = max(CAPABILITIES.values())
    return _LAST_CAP


def normalize(name: str) -> str:
    """Accept ``sys_admin``, ``SYS_ADMIN`` or ``CAP_SYS_ADMIN``; raise on unknown names."""
    n = name.strip().upper()
    if not n.startswith("CAP_"):
        n = "CAP_" + n
    if n not in CAPABILITIES:
        raise ValueError(f"unknown capability {name!r}; known: {', '.join(sorted(CAPABILITIES))}")
    return n


_MASKS: dict[tuple[str, ...], int] = {}


def mask(names: list[str] | None) -> int:
    """A 64-bit mask with a bit set for each named capability this kernel supports."""
    key = tuple(names or ())
    m = _MASKS.get(key)
    if m is None:
        top = last_cap()
        m = 0
        for name in key:
            bit = CAPABILITIES[normalize(name)]
            if bit <= top:
                m |= 1 << bit
        _MASKS[key] = m
    return m


def names(m: int) -> list[str]:
    """The capability names set in mask ``m`` (as the lab prints them)."""
    return [NAMES.get(i, f"CAP_{i}") for i in range(64) if m >> i & 1]
