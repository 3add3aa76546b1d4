"""The kubelet's CNI hook: give each pod sandbox an interface and an IP from the node's podCIDR.

The kubelet calls :meth:`CNINetworkPlugin.setup_pod` after RunPodSandbox and
:meth:`teardown_pod` before RemovePodSandbox. This class builds the network configuration list
for the node (bridge + host-local IPAM + portmap, plus the loopback network, as containerd
does) and hands it to :class:`labkit.node.cni.runner.CNI`, which executes the plugin binaries.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import shutil
import subprocess
from pathlib import Path

from labkit import paths
from labkit.node.cni.runner import CNI, CNIError, pod_ip
from labkit.node.cni.topology import (
    CLUSTER_CIDR,
    FABRIC_NS,
    SERVICE_CIDR,
    NodeNetwork,
    TopologyError,
    delete_netns,
    ensure_netns,
    ip_batch,
)
from labkit.node.kubelet.plugins import NetworkPlugin, PluginError
from labkit.runtime.base import PodSandboxStatus

BRIDGE = f"{paths.IFACE_PREFIX}br0"
POD_NS_PREFIX = f"{paths.PREFIX}-pod-"


def node_conflist(node_name: str, pod_cidr: str, plugin: str = "bridge", scope: str = "") -> dict:
    """The node's pod network as a CNI 1.0.0 conflist. ``plugin``: "bridge" (Go) or "lk-bridge" (Python)."""
    node_id = f"{scope}-{node_name}" if scope else node_name
    data_dir = paths.state_dir() / "cni" / "ipam" / node_id
    gateway = str(next(ipaddress.ip_network(pod_cidr).hosts()))  # the bridge's address
    return {
        "cniVersion": "1.0.0",
        "name": f"{paths.PREFIX}-{node_id}",
        "plugins": [
            {
                "type": plugin,
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,  # no outbound NAT: pod traffic stays inside the project's namespaces
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": pod_cidr}]],
                    "routes": [{"dst": CLUSTER_CIDR, "gw": gateway}, {"dst": SERVICE_CIDR, "gw": gateway}],
                    "dataDir": str(data_dir),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


#: runs the loopback ADD beside the pod network's chain (process-wide: plugins are plain executables)
_LOOPBACK_POOL = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="cni-loopback")

LOOPBACK = {"cniVersion": "1.0.0", "name": "cni-loopback", "plugins": [{"type": "loopback"}]}


class CNINetworkPlugin(NetworkPlugin):
    """CNI for one node: its namespace on the fabric, a bridge, and one IP per pod."""

    def __init__(
        self,
        node_name: str,
        pod_cidr: str,
        plugin: str = "bridge",
        plugin_dirs: list[str] | None = None,
        fabric: str = FABRIC_NS,
        scope: str = "",
    ):
        if not (paths.is_root() and shutil.which("ip") and shutil.which("nsenter")):
            raise PluginError("CNI needs root and iproute2 (ip, nsenter) on Linux", reason="NetworkNotReady")
        self.node = NodeNetwork(node_name, pod_cidr, fabric, scope)
        self.plugin = plugin
        self.conflist = node_conflist(node_name, pod_cidr, plugin, scope)
        try:
            self.node_ip = self.node.setup()
            self.cni = CNI(self.conflist, plugin_dirs, exec_netns=self.node.netns_path)
            self.lo = CNI(LOOPBACK, plugin_dirs)
        except (TopologyError, CNIError) as exc:
            self.node.teardown()
            raise PluginError(str(exc), reason="NetworkNotReady") from None
        self._own_netns: dict[str, str] = {}  # sandbox id -> netns we created (runtime gave none)

    def prepare(self) -> None:
        """Create the pod bridge, with the gateway address, before the first pod comes.

        The bridge plugin makes it on its first ADD when it is missing and uses it as it is when it
        exists, so this only moves one-time work from the first pod's start-up to the node's."""
        gateway = str(next(ipaddress.ip_network(self.node.pod_cidr).hosts()))
        prefix = ipaddress.ip_network(self.node.pod_cidr).prefixlen
        ip_batch(self.node.netns, [
            f"link add {BRIDGE} type bridge",
            f"addr replace {gateway}/{prefix} dev {BRIDGE}",
            f"link set {BRIDGE} up",
        ])

    def _netns_for(self, sandbox: PodSandboxStatus) -> str:
        if sandbox.netns_path:
            return sandbox.netns_path
        # The runtime has no network namespace of its own (the simulated runtime): make one so
        # the pod still gets a real address that other pods can reach.
        name = POD_NS_PREFIX + sandbox.id[:12]
        self._own_netns[sandbox.id] = name
        return ensure_netns(name)

    @staticmethod
    def _args(pod: dict) -> str:
        md = pod.get("metadata", {})
        return f"IgnoreUnknown=1;K8S_POD_NAMESPACE={md.get('namespace', 'default')};K8S_POD_NAME={md.get('name', '')}"

    def setup_pod(self, pod: dict, sandbox: PodSandboxStatus) -> str | None:
        netns = self._netns_for(sandbox)
        try:
            # the loopback network and the pod network are independent: ADD both at once
            lo = _LOOPBACK_POOL.submit(self.lo.add, sandbox.id, netns, "lo")
            try:
                result = self.cni.add(sandbox.id, netns, "eth0", self._args(pod))
            finally:
                lo_error = lo.exception()
            if lo_error is not None:
                try:  # a failed ADD leaves nothing behind: give the pod network back
                    self.cni.delete(sandbox.id, netns, "eth0", self._args(pod))
                except CNIError:
                    pass
                raise lo_error
        except CNIError as exc:
            self._forget(sandbox)
            raise PluginError(f"CNI ADD for sandbox {sandbox.id[:12]} failed: {exc}", reason="FailedCreatePodSandBox") from None
        address = pod_ip(result)
        if address is None:
            raise PluginError(f"CNI ADD returned no IPv4 address: {result}", reason="FailedCreatePodSandBox")
        return address

    def teardown_pod(self, pod: dict, sandbox: PodSandboxStatus) -> None:
        netns = sandbox.netns_path or f"/run/netns/{self._own_netns.get(sandbox.id, POD_NS_PREFIX + sandbox.id[:12])}"
        try:
            self.cni.delete(sandbox.id, netns, "eth0", self._args(pod))
            self.lo.delete(sandbox.id, netns, "lo")
        except CNIError as exc:
            raise PluginError(f"CNI DEL for sandbox {sandbox.id[:12]} failed: {exc}", reason="FailedKillPod") from None
        finally:
            self._forget(sandbox)

    def _forget(self, sandbox: PodSandboxStatus) -> None:
        name = self._own_netns.pop(sandbox.id, None)
        if name:
            delete_netns(name)

    def exec_in_pod(self, sandbox: PodSandboxStatus, *argv: str) -> subprocess.CompletedProcess:
        """Run a host program inside the pod's network namespace (what ``kubectl exec`` would show)."""
        netns = sandbox.netns_path or f"/run/netns/{self._own_netns.get(sandbox.id, '')}"
        return subprocess.run(["nsenter", f"--net={netns}", "--", *argv], capture_output=True, text=True)

    def close(self) -> None:
        """Remove the node's namespace and what is in it (bridge, veths, iptables rules)."""
        for sid in list(self._own_netns):
            delete_netns(self._own_netns.pop(sid))
        self.node.teardown()
        data_dir = Path(self.conflist["plugins"][0]["ipam"]["dataDir"])
        shutil.rmtree(data_dir, ignore_errors=True)
