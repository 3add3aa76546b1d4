"""The lab's "data centre": each node is a network namespace, joined to the others by a router.

On a real cluster every node is a machine with its own network stack, and a cloud router (or
an overlay) carries pod traffic between nodes. Here every labkit node gets a network namespace
``labkit-node-<name>``; a shared namespace ``labkit-fabric`` plays the router. Each node is
wired to it with a veth pair on its own /24 in 10.250.0.0/16, and the router learns one route
per node: "pods in 10.244.N.0/24 are behind node N". Nothing is created in the host's own
network namespace, so pod traffic never touches the host's interfaces or its firewall, and
there is no route (and no NAT) out of the namespaces the project made.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from labkit import paths

FABRIC_NS = f"{paths.PREFIX}-fabric"
NODE_NS_PREFIX = f"{paths.PREFIX}-node-"
UNDERLAY = ipaddress.ip_network("10.250.0.0/16")
CLUSTER_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/16"


class TopologyError(Exception):
    """Building a node's network failed; the message says which step and why."""


def ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``ip ARGS`` on the host, or inside the named network namespace."""
    argv = ["ip", *args] if netns is None else ["ip", "netns", "exec", netns, "ip", *args]
    p = subprocess.run(argv, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise TopologyError(f"`{' '.join(argv)}` failed: {p.stderr.strip()}")
    return p


def ip_batch(netns: str, commands: list[str]) -> subprocess.CompletedProcess:
    """Run several ``ip`` commands inside a network namespace with one process (``ip -n NS -batch``).

    ``-force`` goes on after a failing line (a link that already exists), so this suits idempotent
    set-up; the caller checks the result it needs rather than the exit status."""
    return subprocess.run(["ip", "-n", netns, "-force", "-batch", "-"], input="\n".join(commands) + "\n",
                          capture_output=True, text=True)


def in_netns(netns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run any command inside a named network namespace (``nsenter``: no mount namespace games)."""
    p = subprocess.run(["nsenter", f"--net=/run/netns/{netns}", "--", *argv], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise TopologyError(f"`{' '.join(argv)}` in {netns} failed: {p.stderr.strip()}")
    return p


def netns_exists(name: str) -> bool:
    return os.path.exists(f"/run/netns/{name}")


def ensure_netns(name: str) -> str:
    """Create the named network namespace (idempotent) with ``lo`` up and forwarding on."""
    if not netns_exists(name):
        ip("netns", "add", name)
    ip("link", "set", "lo", "up", netns=name)
    in_netns(name, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    return f"/run/netns/{name}"


def delete_netns(name: str) -> None:
    """Delete a namespace; its interfaces, bridges, routes and iptables rules go with it."""
    if netns_exists(name):
        ip("netns", "del", name, check=False)


def _registry_path(fabric: str) -> Path:
    d = paths.state_dir() / "cni"
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{fabric}.json"


@contextmanager
def _registry(fabric: str, wait: bool = True) -> Iterator[dict]:
    """The fabric's node table (name -> index, podCIDR), under a file lock across processes.

    ``wait=False`` raises BlockingIOError at once when another process holds the table."""
    path = _registry_path(fabric)
    with open(str(path) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        text = path.read_text() if path.exists() else ""
        data = json.loads(text) if text.strip() else {}
        if data and not netns_exists(fabric):
            data = {}  # the fabric was removed (gc, reboot): the table is stale
        yield data
        if data or netns_exists(fabric):
            new = json.dumps(data, indent=1)
            if new != text:  # unchanged tables keep their age (reap_stale_nodes reads it)
                path.write_text(new)
        else:  # the last node left and the router is gone: so is its table
            path.unlink(missing_ok=True)
            Path(str(path) + ".lock").unlink(missing_ok=True)


def _owner_alive(entry: dict, table_age: float) -> bool:
    """Is the process that wired this node still running? (Entries from before owners were
    recorded count as alive for 30 minutes.)"""
    pid = entry.get("pid")
    if not pid:
        return table_age < 1800
    try:
        os.kill(pid, 0)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"python" in cmdline or b"labkit" in cmdline


def reap_stale_nodes() -> list[str]:
    """Remove node namespaces whose owner (a kubelet, or a test or notebook running kubelets)
    died without closing them, e.g. a kubelet killed with SIGKILL; returns what was removed.

    Each node records the pid that set it up; a dead pid means nobody will ever close it."""
    removed = []
    d = paths.state_dir() / "cni"
    for table in sorted(d.glob(f"{FABRIC_NS}*.json")):
        fabric = table.stem
        scope = fabric[len(FABRIC_NS) + 1:]
        try:
            age = time.time() - table.stat().st_mtime
        except OSError:
            continue
        try:
            ctx = _registry(fabric, wait=False)
            reg = ctx.__enter__()
        except BlockingIOError:
            continue  # in use right now: its owner is alive
        try:
            for node, entry in list(reg.items()):
                if _owner_alive(entry, age):
                    continue
                reg.pop(node)
                netns = entry.get("netns") or NODE_NS_PREFIX + (f"{scope}-" if scope else "") + node
                delete_netns(netns)
                if netns_exists(fabric):
                    ip("route", "del", entry["pod_cidr"], netns=fabric, check=False)
                removed.append(netns)
            if not reg and netns_exists(fabric):
                delete_netns(fabric)
                removed.append(fabric)
        finally:
            ctx.__exit__(None, None, None)
    return removed


@dataclass
class NodeNetwork:
    """One node's namespace, wired to the fabric router. ``setup()`` is idempotent."""

    node_name: str
    pod_cidr: str
    fabric: str = FABRIC_NS  #: the router namespace; separate fabrics are separate "data centres"
    scope: str = ""  #: which cluster: two clusters on one host may both have a "node-1"

    @property
    def netns(self) -> str:
        return NODE_NS_PREFIX + (f"{self.scope}-" if self.scope else "") + self.node_name

    @property
    def netns_path(self) -> str:
        return f"/run/netns/{self.netns}"

    def _link_net(self, index: int) -> ipaddress.IPv4Network:
        return list(UNDERLAY.subnets(new_prefix=24))[index]

    def setup(self) -> str:
        """Create the node namespace and its link to the router; returns the node's IP."""
        try:
            ipaddress.ip_network(self.pod_cidr)
        except ValueError as exc:
            raise TopologyError(f"node {self.node_name}: podCIDR {self.pod_cidr!r} is not a network: {exc}") from None
        try:
            reap_stale_nodes()
        except (OSError, TopologyError):
            pass  # cleaning up after others must never stop this node from starting
        with _registry(self.fabric) as reg:
            if reg.get(self.node_name) and not netns_exists(self.netns):
                reg.pop(self.node_name)  # the namespace was removed behind our back (gc): start afresh
            for other, entry in reg.items():
                if other != self.node_name and ipaddress.ip_network(entry["pod_cidr"]).overlaps(
                    ipaddress.ip_network(self.pod_cidr)
                ):
                    raise TopologyError(f"podCIDR {self.pod_cidr} of {self.node_name} overlaps {other}'s")
            used = {e["index"] for n, e in reg.items() if n != self.node_name}
            index = reg.get(self.node_name, {}).get("index") or next(i for i in range(1, 255) if i not in used)
            reg[self.node_name] = {"index": index, "pod_cidr": self.pod_cidr, "pid": os.getpid(), "netns": self.netns}
            ensure_netns(self.fabric)
            ensure_netns(self.netns)
            link = self._link_net(index)
            router_ip, node_ip = str(link[1]), str(link[2])
            fab_if = f"{paths.IFACE_PREFIX}f{index}"
            if ip("link", "show", "eth0", netns=self.netns, check=False).returncode != 0:
                # created on the host under unique lk* names (gc finds them after a crash), then moved
                tmp_f, tmp_n = (f"{paths.IFACE_PREFIX}{os.urandom(4).hex()}" for _ in range(2))
                ip("link", "del", fab_if, netns=self.fabric, check=False)
                ip("link", "add", tmp_f, "type", "veth", "peer", "name", tmp_n)
                ip("link", "set", tmp_f, "netns", self.fabric)
                ip("link", "set", tmp_n, "netns", self.netns)
                ip("link", "set", tmp_f, "name", fab_if, netns=self.fabric)
                ip("link", "set", tmp_n, "name", "eth0", netns=self.netns)
                ip("addr", "add", f"{router_ip}/24", "dev", fab_if, netns=self.fabric)
                ip("addr", "add", f"{node_ip}/24", "dev", "eth0", netns=self.netns)
                ip("link", "set", fab_if, "up", netns=self.fabric)
                ip("link", "set", "eth0", "up", netns=self.netns)
            # the node sends other nodes' pods and ClusterIPs to the router ...
            for cidr in (CLUSTER_CIDR, SERVICE_CIDR, str(UNDERLAY)):
                ip("route", "replace", cidr, "via", router_ip, netns=self.netns)
            # ... and the router knows which node holds which podCIDR
            ip("route", "replace", self.pod_cidr, "via", node_ip, netns=self.fabric)
            # bridged replies must pass the node's conntrack so ClusterIP replies are un-DNATed
            in_netns(self.netns, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1", check=False)
            return node_ip

    def teardown(self) -> None:
        """Remove the node namespace (everything inside goes with it) and its router entry."""
        with _registry(self.fabric) as reg:
            entry = reg.pop(self.node_name, None)
            delete_netns(self.netns)
            if entry and netns_exists(self.fabric):
                ip("route", "del", entry["pod_cidr"], netns=self.fabric, check=False)
            if not reg:
                delete_netns(self.fabric)

    @property
    def node_ip(self) -> str | None:
        with _registry(self.fabric) as reg:
            entry = reg.get(self.node_name)
        return str(self._link_net(entry["index"])[2]) if entry else None
