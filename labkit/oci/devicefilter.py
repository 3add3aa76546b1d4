"""The devices cgroup on cgroup v2: OCI device rules as a BPF program attached to the cgroup.

cgroup v1 has a ``devices`` controller with ``devices.allow``/``devices.deny`` files. cgroup v2 has
no such files: the kernel asks a BPF program of type ``BPF_PROG_TYPE_CGROUP_DEVICE``, attached
to the cgroup, each time a process in it opens or makes a device node. runc generates one from
the spec's ``linux.resources.devices``; so does :func:`program` here, and :func:`attach` loads it
and attaches it.

The program sees ``struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor;}``, where
``access_type`` is ``(access << 16) | type``: type 1 block, 2 char; access 1 mknod, 2 read,
4 write. It returns 1 to allow and 0 to refuse (EPERM). OCI rules are checked in order and the
last one that matches decides, so the program tests them from the last to the first and returns
at the first match; a device that no rule matches is refused.
"""

from __future__ import annotations

import os
import struct

from labkit.oci import syscalls as sc

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only
    from typing import Any

_TYPES = {"b": 1, "c": 2}
_ACCESS = {"m": 1, "r": 2, "w": 4}
_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}
BPF_PROG_LOAD, BPF_PROG_ATTACH = 5, 8
BPF_PROG_TYPE_CGROUP_DEVICE, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI = 15, 6, 2

# eBPF opcodes used (linux/bpf.h): 64-bit ALU on registers, 32-bit loads from the context
_LDXW, _AND_K, _RSH_K, _MOV_X, _MOV_K, _JNE_K, _EXIT = 0x61, 0x57, 0x77, 0xBF, 0xB7, 0x55, 0x95


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _rule_block(rule: dict[str, Any]) -> bytes:
    """One rule's instructions: each test jumps past the block on a mismatch; at the end the
    rule's verdict is returned."""
    kind = rule.get("type") or "a"
    if kind not in ("a", *_TYPES):
        raise ValueError(f"device rule type {kind!r} is not one of a, b, c")
    mask = 0
    for ch in rule.get("access") or "rwm":
        if ch not in _ACCESS:
            raise ValueError(f"device rule access {rule.get('access')!r} may only hold r, w and m")
        mask |= _ACCESS[ch]
    steps: list[bytes | tuple[int, int]] = []  # bytes, or (register, value): "jump out if not equal"
    if kind in _TYPES:
        steps.append((2, _TYPES[kind]))
    if mask != 7:  # the access asked for must lie inside the rule's: (asked & ~mask) == 0
        steps += [_insn(_MOV_X, 6, 3), _insn(_AND_K, 6, imm=~mask & 7), (6, 0)]
    for field, reg in (("major", 4), ("minor", 5)):
        value = rule.get(field)
        if value is not None and int(value) >= 0:
            steps.append((reg, int(value)))
    steps += [_insn(_MOV_K, 0, imm=1 if rule.get("allow") else 0), _insn(_EXIT)]
    return b"".join(_insn(_JNE_K, s[0], off=len(steps) - i - 1, imm=s[1]) if isinstance(s, tuple) else s
                    for i, s in enumerate(steps))


def program(rules: list[dict[str, Any]]) -> bytes:
    """The BPF instructions (8 bytes each) for OCI ``linux.resources.devices`` rules."""
    prologue = (_insn(_LDXW, 2, 1, 0) + _insn(_AND_K, 2, imm=0xFFFF)  # r2 = type
                + _insn(_LDXW, 3, 1, 0) + _insn(_RSH_K, 3, imm=16)  # r3 = access asked for
                + _insn(_LDXW, 4, 1, 4) + _insn(_LDXW, 5, 1, 8))  # r4 = major, r5 = minor
    out = prologue
    for rule in reversed(rules):
        out += _rule_block(rule)
        if _matches_all(rule):  # the verifier refuses code that cannot be reached
            return out
    return out + _insn(_MOV_K, 0, imm=0) + _insn(_EXIT)


def _matches_all(rule: dict[str, Any]) -> bool:
    return ((rule.get("type") or "a") == "a" and set(rule.get("access") or "rwm") == set("rwm")
            and all(rule.get(f) is None or int(rule[f]) < 0 for f in ("major", "minor")))


class _LoadAttr(sc.Structure):  # the BPF_PROG_LOAD part of union bpf_attr
    _fields_ = [("prog_type", sc.c_uint), ("insn_cnt", sc.c_uint), ("insns", sc.c_char_p),
                ("license", sc.c_char_p), ("log_level", sc.c_uint), ("log_size", sc.c_uint),
                ("log_buf", sc.c_char_p), ("kern_version", sc.c_uint), ("prog_flags", sc.c_uint)]


class _AttachAttr(sc.Structure):  # the BPF_PROG_ATTACH part
    _fields_ = [("target_fd", sc.c_uint), ("attach_bpf_fd", sc.c_uint), ("attach_type", sc.c_uint),
                ("attach_flags", sc.c_uint), ("replace_bpf_fd", sc.c_uint)]


def _bpf(cmd: int, attr: object, what: str) -> int:
    nr = _BPF.get(os.uname().machine)
    if nr is None:
        raise OSError(38, f"{what}: the bpf system call number of {os.uname().machine} is not known")
    ret = sc.libc().syscall(sc.c_long(nr), sc.c_long(cmd), sc.c_ulong(sc.addressof(attr)),
                            sc.c_ulong(sc.sizeof(attr)))
    if ret < 0:
        err = sc.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def attach(cgroup_dir: str, rules: list[dict[str, Any]]) -> None:
    """Load the program for ``rules`` and attach it to the v2 cgroup ``cgroup_dir``. It stays
    attached (the cgroup holds it) until the cgroup is removed."""
    insns = program(rules)
    load = _LoadAttr(BPF_PROG_TYPE_CGROUP_DEVICE, len(insns) // 8, insns, b"Apache-2.0", 0, 0, None, 0, 0)
    prog_fd = _bpf(BPF_PROG_LOAD, load, "loading the device filter")
    try:
        cg_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            _bpf(BPF_PROG_ATTACH, _AttachAttr(cg_fd, prog_fd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI, 0),
                 f"attaching the device filter to {cgroup_dir}")
        finally:
            os.close(cg_fd)
    finally:
        os.close(prog_fd)
