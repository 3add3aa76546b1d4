"""labkit's container defaults beside runc's, point by point, computed rather than typed.

``runc spec`` prints the configuration runc's authors ship as the starting point for a bundle.
:func:`compare` reads it, builds labkit's own default (:func:`labkit.oci.spec.make_config`), and
returns one :class:`Row` per protection: masked and read-only paths, each capability set,
no_new_privs, the devices cgroup, seccomp, and the things neither applies. The lab prints the
rows; a test checks that labkit is never looser than runc where both have the protection.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any

from labkit import system_parts
from labkit.oci import seccomp, spec
from labkit.oci.cgroups import detect_layout


@dataclass
class Row:
    what: str
    runc: str  # what `runc spec` sets
    labkit: str  # what labkit's make_config sets
    native: str  # how labkit's own runtime applies it on this host
    verdict: str  # "same", "labkit stricter", "labkit looser", "neither"


def runc_default_spec() -> dict[str, Any]:
    """The config.json that ``runc spec`` writes (in a scratch folder)."""
    runc = system_parts.which("runc")
    if runc is None:
        raise FileNotFoundError(system_parts.not_installed("runc"))
    with tempfile.TemporaryDirectory(prefix="labkit-runc-spec-") as d:
        subprocess.run([runc, "spec", "--bundle", d], check=True, capture_output=True, timeout=30)
        with open(os.path.join(d, "config.json")) as f:
            return json.load(f)


def _short(items: list[str] | None, prefix: str = "") -> str:
    if not items:
        return "(none)"
    return ", ".join(sorted(i.removeprefix(prefix) for i in items))


def _set_verdict(runc: set[str], ours: set[str], more_is_stricter: bool) -> str:
    if runc == ours:
        return "same"
    if more_is_stricter:
        return "labkit stricter" if ours > runc else "labkit looser" if ours < runc else "different"
    return "labkit stricter" if ours < runc else "labkit looser" if ours > runc else "different"


def compare(runc_cfg: dict[str, Any] | None = None, labkit_cfg: dict[str, Any] | None = None) -> list[Row]:
    """The rows of the comparison (runc's spec is read from ``runc spec`` unless given)."""
    r = runc_cfg if runc_cfg is not None else runc_default_spec()
    o = labkit_cfg if labkit_cfg is not None else spec.make_config(["sh"])
    rl, ol = r.get("linux") or {}, o.get("linux") or {}
    rows: list[Row] = []

    for key, label in (("maskedPaths", "masked paths"), ("readonlyPaths", "read-only paths")):
        rs, os_ = set(rl.get(key) or []), set(ol.get(key) or [])
        extra = f"; labkit adds {_short(sorted(os_ - rs))}" if os_ - rs else ""
        missing = f"; labkit lacks {_short(sorted(rs - os_))}" if rs - os_ else ""
        rows.append(Row(label, f"{len(rs)} paths", f"{len(os_)} paths{extra}{missing}",
                        "bind /dev/null or a read-only tmpfs over each" if key == "maskedPaths"
                        else "read-only bind of each onto itself", _set_verdict(rs, os_, True)))

    rcaps, ocaps = r["process"].get("capabilities") or {}, o["process"].get("capabilities") or {}
    for kind in ("bounding", "effective", "permitted", "inheritable", "ambient"):
        rs, os_ = set(rcaps.get(kind) or []), set(ocaps.get(kind) or [])
        rtxt, otxt = _short(sorted(rs), "CAP_"), _short(sorted(os_), "CAP_")
        if os_ - rs and kind == "bounding":
            otxt += f" (runc's {len(rs)} plus {len(os_ - rs)}: the set Docker and containerd grant)"
        if kind != "bounding" and rs and os_ and rs == set(rcaps.get("bounding") or []) \
                and os_ == set(ocaps.get("bounding") or []):
            rtxt = otxt = "as bounding"
        rows.append(Row(f"capabilities: {kind}", rtxt, otxt,
                        "PR_CAPBSET_DROP for the rest, then capset()" if kind == "bounding" else
                        "capset()" if kind in ("effective", "permitted", "inheritable") else
                        "PR_CAP_AMBIENT_CLEAR_ALL, then raise each listed",
                        _set_verdict(rs, os_, False)))

    rn, on = bool(r["process"].get("noNewPrivileges")), bool(o["process"].get("noNewPrivileges"))
    rows.append(Row("no_new_privs", str(rn).lower(), str(on).lower(), "prctl(PR_SET_NO_NEW_PRIVS, 1)",
                    "same" if rn == on else "labkit stricter" if on else "labkit looser"))

    rows.append(_devices_row(rl, ol))
    rows.append(_seccomp_row(rl, ol))

    rro, oro = bool((r.get("root") or {}).get("readonly")), bool((o.get("root") or {}).get("readonly"))
    rows.append(Row("read-only root file system", str(rro).lower(), str(oro).lower() + " (as Docker; "
                    "readonly_rootfs=True asks for it)", "remount / read-only after pivot_root",
                    "same" if rro == oro else "labkit looser" if rro else "labkit stricter"))

    rcg = any(m.get("destination") == "/sys/fs/cgroup" for m in r.get("mounts") or [])
    ocg = any(m.get("destination") == "/sys/fs/cgroup" for m in o.get("mounts") or [])
    rows.append(Row("/sys/fs/cgroup", "cgroup mounted read-only" if rcg else "not mounted",
                    "cgroup mounted read-only" if ocg else "not mounted: an empty folder of the read-only /sys",
                    "-", "same" if rcg == ocg else "labkit stricter" if not ocg else "labkit looser"))

    rns = {n["type"] for n in rl.get("namespaces") or []}
    ons = {n["type"] for n in ol.get("namespaces") or []}
    rows.append(Row("namespaces", _short(sorted(rns)), _short(sorted(ons)),
                    "unshare()/setns(); user namespace on request", _set_verdict(rns, ons, True)))

    rows.append(Row("AppArmor / SELinux", _label(r), _label(o),
                    "not applied (Docker loads its docker-default AppArmor profile)", "neither"))
    return rows


def _label(cfg: dict[str, Any]) -> str:
    aa = (cfg.get("process") or {}).get("apparmorProfile")
    se = (cfg.get("process") or {}).get("selinuxLabel")
    return ", ".join(x for x in (aa and f"apparmor {aa}", se and f"selinux {se}") if x) or "(none)"


def _devices_row(rl: dict[str, Any], ol: dict[str, Any]) -> Row:
    def allowed(linux: dict[str, Any]) -> list[str]:
        out = []
        for rule in (linux.get("resources") or {}).get("devices") or []:
            if rule.get("allow"):
                minor = rule.get("minor")
                out.append(f"{rule.get('type', 'a')} {rule.get('major', '*')}:{'*' if minor is None else minor}")
        return out

    def denies_first(linux: dict[str, Any]) -> bool:
        rules = (linux.get("resources") or {}).get("devices") or []
        return bool(rules) and not rules[0].get("allow") and rules[0].get("access") == "rwm" and "major" not in rules[0]

    ra, oa = allowed(rl), allowed(ol)
    mode = detect_layout().mode
    if mode == "v2":
        how = "a BPF_PROG_TYPE_CGROUP_DEVICE program made from the rules, attached to the cgroup (as runc)"
    elif mode in ("v1", "hybrid"):
        how = ("devices.deny 'a', then devices.allow per rule (cgroup v1 devices controller; "
               "on cgroup v2 a BPF device program)")
    else:
        how = "no cgroups here: not enforced"
    runc_txt = ("deny all" if denies_first(rl) else "?") + (f", allow {', '.join(ra)}" if ra else "") + \
        " (runc itself then allows null, zero, full, random, urandom, tty, ptmx and pts)"
    ours_txt = ("deny all" if denies_first(ol) else "?") + f", allow {', '.join(oa)}"
    verdict = "same" if denies_first(rl) == denies_first(ol) else "labkit looser"
    return Row("devices cgroup", runc_txt, ours_txt, how, verdict)


def _seccomp_row(rl: dict[str, Any], ol: dict[str, Any]) -> Row:
    def describe(linux: dict[str, Any]) -> str:
        prof = linux.get("seccomp")
        if not prof:
            return "(none): every system call allowed"
        return (f"default {prof.get('defaultAction')} (errno {prof.get('defaultErrnoRet', 1)}), "
                f"{len(seccomp.allowed_names(prof))} calls allowed, "
                f"{', '.join(a.removeprefix('SCMP_ARCH_') for a in prof.get('architectures') or [])}")

    has_r, has_o = bool(rl.get("seccomp")), bool(ol.get("seccomp"))
    return Row("seccomp", describe(rl), describe(ol),
               "libseccomp compiles it to BPF; prctl(PR_SET_SECCOMP) just before exec (and in every exec)",
               "same" if has_r == has_o else "labkit stricter" if has_o else "labkit looser")


def table(rows: list[Row], width: int = 46) -> str:
    """The rows as a plain-text table for a notebook (long cells wrap)."""
    import textwrap

    head = ("", "runc spec", "labkit", "verdict")
    lines = [f"{head[0]:<26} {head[1]:<{width}} {head[2]:<{width}} {head[3]}"]
    for row in rows:
        a = textwrap.wrap(row.runc, width) or [""]
        b = textwrap.wrap(row.labkit, width) or [""]
        for i in range(max(len(a), len(b))):
            lines.append(f"{row.what if i == 0 else '':<26} {a[i] if i < len(a) else '':<{width}} "
                         f"{b[i] if i < len(b) else '':<{width}} {row.verdict if i == 0 else ''}")
    return "\n".join(lines)
