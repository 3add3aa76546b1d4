"""NetworkChaos: ``network-partition`` (a node from the apiserver), ``network-delay`` and ``network-loss``
(on a pod's veth).

Chaos Mesh's NetworkChaos actions ``partition``, ``delay`` and ``loss``; Litmus's
``pod-network-partition``, ``pod-network-latency`` and ``pod-network-loss``.

**Partition.** On a real cluster the node is a machine: cutting its network cuts the kubelet off
from the apiserver. In labkit a node's pods live in the node's own network namespace
(``labkit-node-<scope>-<node>``, wired to the other nodes through the fabric router), but its
kubelet is a host process that reaches the apiserver over the host's loopback. So the partition
has two parts, both undone at the end:

* the node's namespace drops everything on its link to the fabric (``eth0``): its pods cannot reach
  other nodes' pods or Services, nor they it;
* the kubelet is moved into a cgroup of its own, and one loopback rule rejects that cgroup's
  connections to the apiserver's port (the kubelet's open connections are closed with ``ss -K``).
  Only that process's traffic to that port is touched; nothing else on the host.

**Delay and loss** go on the pod's veth, the host side of its link inside the node's namespace,
with ``tc qdisc ... netem`` - when the kernel has netem (``sch_netem``). Where it has not (this
project's build machines: ``tc`` answers "Specified qdisc kind is unknown"), both fall back to
rules in the pod's own namespace, and say so: loss to an ``iptables -m statistic`` rule that drops
the same share of packets; delay to an NFQUEUE rule whose listener
(:mod:`labkit.chaos.nfqdelay`, in that namespace) accepts each packet late. Both act on the
packets coming into the pod, as netem on the veth's host side does.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
from pathlib import Path

from labkit.chaos.fault import Fault
from labkit.chaos.target import ChaosError
from labkit.node.cni.topology import NODE_NS_PREFIX
from labkit.node.scope import cluster_scope

COMMENT = "labkit-chaos"


def _ns(netns: str, *argv: str, check: bool = False) -> subprocess.CompletedProcess:
    res = subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, timeout=20)
    if check and res.returncode != 0:
        raise ChaosError(f"{' '.join(argv)} in {netns}: {res.stderr.strip() or res.stdout.strip()}")
    return res


def node_netns(cluster, node: str) -> str:
    scope = cluster_scope(cluster.kubeconfig)
    return NODE_NS_PREFIX + (f"{scope}-" if scope else "") + node


def _need_root(action: str) -> None:
    if os.geteuid() != 0:
        raise ChaosError(f"{action} changes network namespaces and firewall rules: run it as root")


# ------------------------------------------------------------------ netem, and whether this kernel has it
def netem_works() -> tuple[bool, str]:
    """Whether ``tc qdisc ... netem`` works here, and tc's own words when it does not."""
    probe = f"labkit-chaos-probe-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", probe], capture_output=True, timeout=20)
    try:
        res = _ns(probe, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms")
        return res.returncode == 0, (res.stderr or res.stdout).strip()
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=20)


# ------------------------------------------------------------------ partition
class NetworkPartition(Fault):
    action = "network-partition"
    target_help = "a node name, e.g. node-2: cut it off from the apiserver (and its pods from other nodes)"

    def inject(self) -> None:
        _need_root(self.action)
        self.cluster.node(self.target)
        kubelet = self.cluster.component(f"kubelet-{self.target}")
        self._cut_node_netns()
        self._cut_kubelet(kubelet.pid)

    def _cut_node_netns(self) -> None:
        if self.options.get("control_plane_only"):
            return
        netns = node_netns(self.cluster, self.target)
        if not Path(f"/run/netns/{netns}").exists():
            self.say(f"{self.target} has no network namespace (its pods run without a pod network): "
                     "only its kubelet is cut off")
            return
        for chain, flag in (("INPUT", "-i"), ("OUTPUT", "-o"), ("FORWARD", "-i"), ("FORWARD", "-o")):
            rule = [chain, flag, "eth0", "-m", "comment", "--comment", COMMENT, "-j", "DROP"]
            self.journal.add("iptables-delete", netns=netns, table="filter", rule=rule)
            _ns(netns, "iptables", "-w", "-I", *rule, check=True)
        self.say(f"in namespace {netns}: DROP on eth0, its link to the other nodes")

    def _cut_kubelet(self, pid: int) -> None:
        root = _cgroup2_root()
        port = int(self.cluster.url.rsplit(":", 1)[1])
        group_name = f"labkit-chaos-{self.journal.id}"
        back = root / _cgroup2_of(pid).lstrip("/")
        self.journal.add("cgroup-restore", path=str(root / group_name), back=str(back))
        (root / group_name).mkdir(exist_ok=True)
        (root / group_name / "cgroup.procs").write_text(str(pid))
        rule = ["OUTPUT", "-o", "lo", "-p", "tcp", "-d", "127.0.0.1", "--dport", str(port), "-m", "cgroup",
                "--path", group_name, "-m", "comment", "--comment", COMMENT, "-j", "REJECT",
                "--reject-with", "tcp-reset"]
        self.journal.add("iptables-delete", table="filter", rule=rule)
        res = subprocess.run(["iptables", "-w", "-I", *rule], capture_output=True, text=True, timeout=20)
        if res.returncode != 0:
            raise ChaosError(f"cannot cut the kubelet off (iptables: {res.stderr.strip()}); the cgroup match "
                             "needs the xt_cgroup module and a cgroup2 mount")
        closed = _close_connections(pid, port)
        self.say(f"kubelet-{self.target} (pid {pid}) cut off from the apiserver at 127.0.0.1:{port} "
                 f"({closed} open connection(s) closed)")

    def recover(self) -> None:
        self.say(f"{self.target} reconnected")


def _cgroup2_root() -> Path:
    for line in Path("/proc/mounts").read_text().splitlines():
        f = line.split()
        if len(f) > 2 and f[2] == "cgroup2":
            return Path(f[1])
    raise ChaosError("no cgroup2 hierarchy is mounted: the kubelet's traffic cannot be told apart from others'")


def _cgroup2_of(pid: int) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return line[3:] or "/"
    return "/"


def _close_connections(pid: int, port: int) -> int:
    """Close the TCP connections ``pid`` holds to 127.0.0.1:``port`` (``ss -K``); how many."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            m = re.match(r"socket:\[(\d+)\]", os.readlink(fd))
        except OSError:
            continue
        if m:
            inodes.add(m.group(1))
    out = subprocess.run(["ss", "-tnHe", "state", "established", "dst", "127.0.0.1", "dport", "=", str(port)],
                         capture_output=True, text=True, timeout=20).stdout
    closed = 0
    for line in out.splitlines():
        m = re.search(r"127\.0\.0\.1:(\d+)\s+127\.0\.0\.1:\d+.*\bino:(\d+)", line)
        if m and m.group(2) in inodes:
            subprocess.run(["ss", "-K", "-tnH", "src", f"127.0.0.1:{m.group(1)}", "dst", f"127.0.0.1:{port}"],
                           capture_output=True, timeout=20)
            closed += 1
    return closed


# ------------------------------------------------------------------ delay and loss on a pod's veth
def pod_link(cluster, pod: dict) -> tuple[str, str, str]:
    """(node namespace, the pod's host-side veth there, the pod's own namespace) for a running pod."""
    node, ip = pod["spec"].get("nodeName"), (pod.get("status") or {}).get("podIP")
    if not node or not ip:
        raise ChaosError(f"pod {pod['metadata']['name']} has no node or no IP yet")
    netns = node_netns(cluster, node)
    if not Path(f"/run/netns/{netns}").exists():
        raise ChaosError(f"node {node} has no network namespace: its pods run without a pod network "
                         "(root and a real runtime give them one)")
    links = _ns(netns, "ip", "-o", "link", "show", "type", "veth", check=True).stdout
    for line in links.splitlines():
        m = re.match(r"\d+:\s+([^@:\s]+)@\S+:.*\blink-netns\s+(\S+)", line)
        if not m:
            continue
        veth, peer_ns = m.groups()
        addrs = _ns(peer_ns, "ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout
        if f" {ip}/" in addrs:
            return netns, veth, peer_ns
    raise ChaosError(f"no veth in {netns} leads to pod {pod['metadata']['name']} ({ip})")


class _PodNetwork(Fault):
    target_help = "a pod: [namespace/]name, or a label selector such as app=web"

    def _netem(self, args: list[str]) -> bool:
        """Put netem on the pod's veth; False when this kernel has no netem."""
        _need_root(self.action)
        pod = self.cluster.pod(self.target)
        self.pod_name = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        self.node_ns, self.veth, self.pod_ns = pod_link(self.cluster, pod)
        ok, why = netem_works()
        if not ok:
            self.no_netem = why
            return False
        self.journal.add("qdisc-delete", netns=self.node_ns, dev=self.veth)
        _ns(self.node_ns, "tc", "qdisc", "replace", "dev", self.veth, "root", "netem", *args, check=True)
        self.say(f"tc qdisc netem {' '.join(args)} on {self.veth}, the veth of pod {self.pod_name}")
        return True


class NetworkDelay(_PodNetwork):
    action = "network-delay"

    def inject(self) -> None:
        ms = float(self.options.get("latency_ms") or 200)
        if not 0 < ms <= 60000:
            raise ChaosError(f"--latency must be above 0 and at most 60000 ms, not {ms:g}")
        jitter = float(self.options.get("jitter_ms") or 0)
        args = ["delay", f"{ms:g}ms"] + ([f"{jitter:g}ms"] if jitter else [])
        if self._netem(args):
            return
        self._nfqueue(ms)

    def _nfqueue(self, ms: float) -> None:
        """No netem: queue the pod's incoming packets to a listener that accepts each one ``ms`` late."""
        queue = 1000 + int.from_bytes(os.urandom(2), "big") % 60000
        proc = subprocess.Popen(["ip", "netns", "exec", self.pod_ns, sys.executable, "-m", "labkit.chaos.nfqdelay",
                                 "--queue", str(queue), "--delay-ms", f"{ms:g}"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.journal.add("stop-process", pid=proc.pid, marker="labkit.chaos.nfqdelay")
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        line = proc.stdout.readline() if ready else ""
        if line.strip() != "ready":
            raise ChaosError(f"network-delay: this kernel has no netem ({self.no_netem}), and the NFQUEUE "
                             f"listener that stands in for it did not start: {line.strip() or 'no answer in 10 s'}")
        proc.stdout.close()
        self.helper = proc
        rule = ["INPUT", "-i", "eth0", "-m", "comment", "--comment", COMMENT, "-j", "NFQUEUE", "--queue-num",
                str(queue), "--queue-bypass"]
        self.journal.add("iptables-delete", netns=self.pod_ns, table="filter", rule=rule)
        _ns(self.pod_ns, "iptables", "-w", "-I", *rule, check=True)
        self.say(f"no netem on this kernel ({self.no_netem}); instead, in pod {self.pod_name}'s namespace, packets "
                 f"arriving on eth0 go to NFQUEUE {queue}, whose listener (pid {proc.pid}) lets each through "
                 f"{ms:g} ms late")


    def recover(self) -> None:
        helper = getattr(self, "helper", None)
        if helper is not None:  # stopped by the journal's step; collect its exit status
            try:
                helper.wait(5)
            except subprocess.TimeoutExpired:
                helper.kill()
                helper.wait(5)
            self.helper = None


class NetworkLoss(_PodNetwork):
    action = "network-loss"

    def inject(self) -> None:
        percent = float(self.options.get("loss_percent") or 50)
        if not 0 < percent <= 100:
            raise ChaosError(f"--loss must be a percentage above 0 and at most 100, not {percent:g}")
        if self._netem(["loss", f"{percent:g}%"]):
            return
        rule = ["INPUT", "-i", "eth0", "-m", "statistic", "--mode", "random", "--probability",
                f"{percent / 100:.4f}", "-m", "comment", "--comment", COMMENT, "-j", "DROP"]
        self.journal.add("iptables-delete", netns=self.pod_ns, table="filter", rule=rule)
        _ns(self.pod_ns, "iptables", "-w", "-I", *rule, check=True)
        self.say(f"no netem on this kernel ({self.no_netem}); instead, in pod {self.pod_name}'s namespace, "
                 f"iptables drops {percent:g}% of the packets arriving on eth0 at random")
