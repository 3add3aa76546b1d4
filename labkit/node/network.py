"""The kubelet's network plug point on a real node: CNI for each pod, plus the node's kube-proxy.

It wraps :class:`labkit.node.cni.plugin.CNINetworkPlugin`, which needs the node's podCIDR: that
is read from the Node object when the node was not given one (the node-IPAM controller assigns
it after the kubelet registers). The node's kube-proxy starts with its network namespace.
"""

from __future__ import annotations

import logging
import threading

from labkit.client.blocking import BlockingClient
from labkit.client.kubeconfig import KubeConfig
from labkit.node.kubelet.plugins import NetworkPlugin, PluginError
from labkit.node.scope import fabric_name
from labkit.runtime.base import PodSandboxStatus

log = logging.getLogger(__name__)


class NodeNetworkPlugin(NetworkPlugin):
    """CNI that learns the node's podCIDR from its Node object when it was not given one.

    The node-IPAM controller assigns ``spec.podCIDR`` after the kubelet registers the Node, so
    the first pod may arrive before the CIDR does: then the pod gets NetworkNotReady and the
    kubelet retries, as a real kubelet does while its CNI config is missing.
    """

    def __init__(self, node_name: str, pod_cidr: str | None, kubeconfig, plugin: str = "bridge",
                 fabric: str | None = None, scope: str = ""):
        self.node_name = node_name
        self.scope = scope
        self.pod_cidr = pod_cidr
        self._kc = kubeconfig
        self.plugin = plugin
        self.fabric = fabric
        self._cni = None
        self._lock = threading.Lock()
        self.with_proxy = True
        self.proxy = None

    @property
    def cni(self):
        """The live CNINetworkPlugin (built on first use)."""
        with self._lock:
            if self._cni is None:
                from labkit.node.cni.plugin import CNINetworkPlugin

                cidr = self.pod_cidr or self._lookup_cidr()
                self._cni = CNINetworkPlugin(self.node_name, cidr, self.plugin, fabric=self.fabric or fabric_name(self.scope),
                                             scope=self.scope)
                self.pod_cidr = cidr
                if self.with_proxy:
                    self._start_proxy()
            return self._cni

    def _start_proxy(self) -> None:
        """kube-proxy for this node: Services' ClusterIPs DNATed to ready pods in the node's namespace."""
        try:
            from labkit.node.proxy import KubeProxy

            kc = self._kc if isinstance(self._kc, KubeConfig) else KubeConfig.load(self._kc)
            self.proxy = KubeProxy(kc, [self._cni.node.netns_path]).start()
        except Exception as exc:  # pods still get IPs; only Services will not answer
            log.warning("node %s: kube-proxy did not start: %s", self.node_name, exc)

    def _lookup_cidr(self) -> str:
        try:
            api = BlockingClient(self._kc, user_agent=f"labkit-kubelet/{self.node_name}")
            try:
                node = api.get("nodes", self.node_name)
            finally:
                api.close()
        except Exception as exc:  # no kubeconfig, server down ...
            raise PluginError(f"cannot read Node {self.node_name} to learn its podCIDR: {exc}",
                              reason="NetworkNotReady") from None
        cidr = (node.get("spec") or {}).get("podCIDR")
        if not cidr:
            raise PluginError(f"node {self.node_name} has no spec.podCIDR yet (the node-IPAM controller assigns it)",
                              reason="NetworkNotReady")
        return cidr

    def prepare_node(self, node: dict | None) -> None:
        """Build the node's network (namespace, bridge, kube-proxy) as soon as the podCIDR is known."""
        cidr = self.pod_cidr or ((node or {}).get("spec") or {}).get("podCIDR")
        if not cidr:
            raise PluginError(f"node {self.node_name} has no spec.podCIDR yet (the node-IPAM controller assigns it)",
                              reason="NetworkNotReady")
        self.pod_cidr = cidr
        try:
            cni = self.cni
        except PluginError as exc:  # final: each pod will report it (and try to build it again)
            raise PluginError(str(exc), reason="NetworkPluginFailed") from None
        cni.prepare()

    def setup_pod(self, pod: dict, sandbox: PodSandboxStatus) -> str | None:
        if (pod.get("spec") or {}).get("hostNetwork"):
            return None
        return self.cni.setup_pod(pod, sandbox)

    def teardown_pod(self, pod: dict, sandbox: PodSandboxStatus) -> None:
        if (pod.get("spec") or {}).get("hostNetwork") or self._cni is None:
            return
        self._cni.teardown_pod(pod, sandbox)

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None
        if self._cni is not None:
            self._cni.close()
            self._cni = None
