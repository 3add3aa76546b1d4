"""Leftover networks: namespaces ``labkit-*`` (pods', nodes', the fabric), host interfaces and
bridges ``lk*``, iptables rules tagged ``labkit`` and chains ``LABKIT-*``; each ``labkit gc`` kind."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from labkit import paths
from labkit.runtime.gc import Kind, Leak, run


# --- network namespaces, links, iptables -------------------------------------------
def _netns_leaks() -> list[Leak]:
    d = Path("/var/run/netns")
    if not d.is_dir():
        return []
    return [Leak("netns", p.name) for p in sorted(d.iterdir()) if p.name.startswith("labkit-")]


def _link_leaks() -> list[Leak]:
    out = run(["ip", "-o", "link", "show"])
    names = []
    for line in out.stdout.splitlines():
        m = re.match(r"\d+:\s+([^:@\s]+)", line)
        if m and m.group(1).startswith(paths.IFACE_PREFIX):
            names.append(m.group(1))
    return [Leak("links", n) for n in names]


def _iptables_rules() -> list[tuple[str, str]]:
    """(table, rule spec) for rules tagged with a labkit comment or in LABKIT-* chains."""
    if not shutil.which("iptables"):
        return []
    out = []
    for table in ("filter", "nat"):
        res = run(["iptables", "-w", "-t", table, "-S"])
        for line in res.stdout.splitlines():
            if line.startswith("-A ") and ("labkit" in line.lower()):
                out.append((table, line))
            elif line.startswith("-N ") and line.split()[1].upper().startswith("LABKIT"):
                out.append((table, line))
    return out


def _iptables_leaks() -> list[Leak]:
    return [Leak("iptables", f"-t {t} {r}") for t, r in _iptables_rules()]


def _remove_iptables() -> None:
    import shlex

    rules = _iptables_rules()
    for table, line in rules:
        if line.startswith("-A "):
            run(["iptables", "-w", "-t", table, "-D"] + shlex.split(line)[1:])
    for table, line in rules:
        if line.startswith("-N "):
            chain = line.split()[1]
            run(["iptables", "-w", "-t", table, "-F", chain])
            run(["iptables", "-w", "-t", table, "-X", chain])


NETNS = Kind("netns", _netns_leaks, lambda: [run(["ip", "netns", "del", x.what]) for x in _netns_leaks()])
LINKS = Kind("links", _link_leaks, lambda: [run(["ip", "link", "del", x.what]) for x in _link_leaks()])
IPTABLES = Kind("iptables", _iptables_leaks, _remove_iptables)
