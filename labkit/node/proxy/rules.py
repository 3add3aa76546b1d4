"""Service → pod forwarding as iptables rules, the way kube-proxy's iptables mode writes them.

For each Service port with ready endpoints, a packet to ``clusterIP:port`` jumps to a per-service
chain that picks one endpoint at random (``-m statistic``: the first with probability 1/n, the
next 1/(n-1) ...), and the endpoint's chain DNATs it to ``podIP:targetPort``. A Service with no
ready endpoints gets a REJECT, so clients fail fast instead of hanging. A NodePort Service's
``nodePort`` on any of the node's own addresses (its underlay address, seen from the fabric or from
other nodes) jumps to the same chain; that traffic is source-NATed to the node's bridge address,
because pods have routes only to the pod and service ranges and could not answer the client. Every rule carries the
comment ``labkit`` so ``labkit gc`` can find it; the whole set is rewritten atomically with
``iptables-restore --noflush``.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass

SERVICES = "LABKIT-SERVICES"
POSTROUTING = "LABKIT-POSTROUTING"
REJECTS = "LABKIT-NOENDPOINTS"
NODEPORTS = "LABKIT-NODEPORTS"
HAIRPIN_MARK = "0x4000/0x4000"
NODEPORT_MARK = "0x8000/0x8000"
BRIDGE = "lkbr0"  # the node's pod bridge (labkit.node.cni.plugin.BRIDGE)


@dataclass(frozen=True)
class ServicePort:
    """One forwarding decision: clusterIP:port/proto → [podIP:port ...]."""

    namespace: str
    name: str
    port_name: str
    cluster_ip: str
    port: int
    protocol: str
    endpoints: tuple[str, ...]  # "ip:port"
    node_port: int | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}:{self.port_name or self.port}"


HOOKS = (
    ("nat", SERVICES, ("PREROUTING", "OUTPUT")),
    ("nat", POSTROUTING, ("POSTROUTING",)),
    ("filter", REJECTS, ("FORWARD", "OUTPUT")),
)


def _chain(prefix: str, text: str) -> str:
    return f"{prefix}-{hashlib.sha256(text.encode()).hexdigest()[:16].upper()}"


def service_ports(services: list[dict], endpoints: list[dict]) -> list[ServicePort]:
    """Join Services with their Endpoints (same namespace/name) into forwarding decisions."""
    eps = {(e["metadata"].get("namespace", "default"), e["metadata"]["name"]): e for e in endpoints}
    out = []
    for svc in services:
        md, spec = svc["metadata"], svc.get("spec", {})
        cip = spec.get("clusterIP")
        if not cip or cip == "None":
            continue  # headless, or not allocated yet
        ns = md.get("namespace", "default")
        subsets = (eps.get((ns, md["name"])) or {}).get("subsets") or []
        for sp in spec.get("ports") or []:
            proto = sp.get("protocol", "TCP")
            targets = []
            for ss in subsets:
                ports = ss.get("ports") or []
                match = [p for p in ports if p.get("name", "") == sp.get("name", "")] or (ports if len(ports) == 1 else [])
                for p in match:
                    targets += [f"{a['ip']}:{p['port']}" for a in ss.get("addresses") or []]
            node_port = sp.get("nodePort") if spec.get("type") in ("NodePort", "LoadBalancer") else None
            out.append(ServicePort(ns, md["name"], sp.get("name", ""), cip, int(sp["port"]), proto,
                                   tuple(sorted(targets)), int(node_port) if node_port else None))
    return out


def render(ports: list[ServicePort], bridge_ip: str | None = None) -> tuple[str, str]:
    """The nat and filter table fragments for ``iptables-restore --noflush``."""
    nat = ["*nat", f":{SERVICES} - [0:0]", f":{NODEPORTS} - [0:0]", f":{POSTROUTING} - [0:0]"]
    flt = ["*filter", f":{REJECTS} - [0:0]"]
    # hairpin: a pod that reaches itself through its own Service must see the reply come from the
    # Service, so that one case is source-NATed to the node's bridge address (kube-proxy does the same)
    body_nat = [f'-A {POSTROUTING} -m mark --mark {HAIRPIN_MARK} -m comment --comment "labkit hairpin" -j MASQUERADE']
    snat = f"SNAT --to-source {bridge_ip}" if bridge_ip else "MASQUERADE"
    body_nat.append(f'-A {POSTROUTING} -m mark --mark {NODEPORT_MARK} -m comment --comment "labkit nodeport" -j {snat}')
    body_flt = []
    node_ports = []
    for sp in ports:
        proto = sp.protocol.lower()
        match = f"-d {sp.cluster_ip}/32 -p {proto} -m {proto} --dport {sp.port}"
        comment = f'-m comment --comment "labkit {sp.key}"'
        np_match = f"-p {proto} -m {proto} --dport {sp.node_port}" if sp.node_port else ""
        if not sp.endpoints:
            body_flt.append(f"-A {REJECTS} {match} {comment} -j REJECT")
            if np_match:
                body_flt.append(f"-A {REJECTS} -m addrtype --dst-type LOCAL {np_match} {comment} -j REJECT")
            continue
        svc_chain = _chain("LABKIT-SVC", sp.key)
        nat.append(f":{svc_chain} - [0:0]")
        body_nat.append(f"-A {SERVICES} {match} {comment} -j {svc_chain}")
        if np_match:
            node_ports.append(f"-A {NODEPORTS} {np_match} {comment} -j MARK --set-xmark {NODEPORT_MARK}")
            node_ports.append(f"-A {NODEPORTS} {np_match} {comment} -j {svc_chain}")
        n = len(sp.endpoints)
        for i, ep in enumerate(sp.endpoints):
            sep = _chain("LABKIT-SEP", sp.key + ep)
            nat.append(f":{sep} - [0:0]")
            prob = "" if i == n - 1 else f"-m statistic --mode random --probability {1 / (n - i):.5f} "
            body_nat.append(f"-A {svc_chain} {comment} {prob}-j {sep}")
            body_nat.append(f"-A {sep} -s {ep.split(':')[0]}/32 {comment} -j MARK --set-xmark {HAIRPIN_MARK}")
            body_nat.append(f"-A {sep} -p {proto} {comment} -m {proto} -j DNAT --to-destination {ep}")
    # as kube-proxy: node ports are looked at last, for packets addressed to the node itself
    body_nat.append(f'-A {SERVICES} -m addrtype --dst-type LOCAL -m comment --comment "labkit nodeports" -j {NODEPORTS}')
    return "\n".join(nat + body_nat + node_ports + ["COMMIT", ""]), "\n".join(flt + body_flt + ["COMMIT", ""])


def _run(netns: str | None, argv: list[str], stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    if netns:
        argv = ["nsenter", f"--net={netns}", "--", *argv]
    p = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed: {p.stderr.strip()}")
    return p


def apply(netns: str | None, ports: list[ServicePort]) -> None:
    """Program the rules into one network namespace (a node's); stale chains are deleted."""
    addr = _run(netns, ["ip", "-4", "-o", "addr", "show", "dev", BRIDGE], check=False).stdout.split()
    bridge_ip = addr[addr.index("inet") + 1].split("/")[0] if "inet" in addr else None
    nat, flt = render(ports, bridge_ip)
    existing = _run(netns, ["iptables", "-t", "nat", "-S"]).stdout
    wanted = {line.split()[0][1:] for line in nat.splitlines() if line.startswith(":")}
    stale = [
        line.split()[1] for line in existing.splitlines()
        if line.startswith("-N LABKIT-S") and line.split()[1] not in wanted and line.split()[1] != SERVICES
    ]
    # flush stale chains in the same transaction, then delete them once nothing jumps there
    nat_lines = nat.splitlines()
    nat_lines[1:1] = [f":{c} - [0:0]" for c in stale]
    nat_lines[-1:-1] = [f"-X {c}" for c in stale]
    _run(netns, ["iptables-restore", "--noflush"], "\n".join(nat_lines) + "\n")
    _run(netns, ["iptables-restore", "--noflush"], flt)
    for table, chain, hooks in HOOKS:
        for hook in hooks:
            rule = ["-m", "comment", "--comment", "labkit", "-j", chain]
            if _run(netns, ["iptables", "-t", table, "-C", hook, *rule], check=False).returncode != 0:
                _run(netns, ["iptables", "-t", table, "-I", hook, *rule])


def remove(netns: str | None) -> None:
    """Take every labkit service rule out of a namespace (for nodes that share the host's)."""
    for table, chain, hooks in HOOKS:
        for hook in hooks:
            _run(netns, ["iptables", "-t", table, "-D", hook, "-m", "comment", "--comment", "labkit", "-j", chain],
                 check=False)
    apply_empty = render([])
    _run(netns, ["iptables-restore", "--noflush"], apply_empty[1], check=False)
    existing = _run(netns, ["iptables", "-t", "nat", "-S"], check=False).stdout
    chains = [ln.split()[1] for ln in existing.splitlines() if ln.startswith("-N LABKIT-")]
    for c in chains:
        _run(netns, ["iptables", "-t", "nat", "-F", c], check=False)
    for c in chains:
        _run(netns, ["iptables", "-t", "nat", "-X", c], check=False)
    _run(netns, ["iptables", "-t", "filter", "-X", REJECTS], check=False)
