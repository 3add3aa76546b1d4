"""The swarm's own network: a bridge ``lksw<id>`` and one namespace per node on it.

The addresses come from 10.213.41.0/24, a range nothing else in the project uses. The bridge has
no address on the host, and the namespaces have no default route: the nodes reach each other and
nothing else (no NAT, no way out). The host's FORWARD chain drops bridged traffic while Docker
runs (``bridge-nf-call-iptables``), so one ACCEPT rule, tagged ``labkit``, lets frames cross the
bridge.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

SUBNET = "10.213.41"
PREFIX_LEN = 24
NETNS_DIR = Path("/var/run/netns")


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run one host command; with ``check``, a failure raises with the command's own message."""
    res = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {res.stderr.strip() or res.stdout.strip()}")
    return res


def bridge_name(swarm_id: str) -> str:
    return f"lksw{swarm_id}"


def netns_name(swarm_id: str, index: int) -> str:
    return f"labkit-swarm-{swarm_id}-n{index}"


def address(index: int) -> str:
    """Node ``index``'s address (node 1 is 10.213.41.11)."""
    return f"{SUBNET}.{10 + index}"


def rule(swarm_id: str) -> list[str]:
    br = bridge_name(swarm_id)
    return ["FORWARD", "-i", br, "-o", br, "-m", "comment", "--comment", f"labkit swarm {swarm_id}", "-j", "ACCEPT"]


@dataclass
class SwarmNetwork:
    """The bridge and the namespaces of one swarm; :meth:`remove` takes away whatever exists."""

    swarm_id: str
    nodes: int

    def create(self) -> None:
        br = bridge_name(self.swarm_id)
        sh("ip", "link", "add", br, "type", "bridge")
        sh("ip", "link", "set", br, "up")
        sh("iptables", "-w", "-I", *rule(self.swarm_id))
        for i in range(1, self.nodes + 1):
            ns, veth = netns_name(self.swarm_id, i), f"{br}n{i}"
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "link", "set", veth, "master", br, "up")
            sh("ip", "-n", ns, "addr", "add", f"{address(i)}/{PREFIX_LEN}", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")

    def remove(self) -> None:
        remove_network(self.swarm_id)


def remove_network(swarm_id: str) -> None:
    """Delete the namespaces, the bridge and its veths, and the FORWARD rule (each if present)."""
    for ns in sorted(NETNS_DIR.glob(f"labkit-swarm-{swarm_id}-n*")) if NETNS_DIR.is_dir() else []:
        sh("ip", "netns", "delete", ns.name, check=False)
    br = bridge_name(swarm_id)
    for line in sh("ip", "-o", "link", "show", check=False).stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith(br):
            sh("ip", "link", "delete", name, check=False)
    while sh("iptables", "-w", "-C", *rule(swarm_id), check=False).returncode == 0:
        sh("iptables", "-w", "-D", *rule(swarm_id), check=False)


def in_node(swarm_id: str, index: int, *argv: str, timeout: float = 10) -> subprocess.CompletedProcess:
    """Run a host program inside node ``index``'s namespace (how the lab reaches node addresses)."""
    ns = netns_name(swarm_id, index)
    return subprocess.run(["nsenter", f"--net={NETNS_DIR / ns}", *argv], capture_output=True, text=True,
                          timeout=timeout)
