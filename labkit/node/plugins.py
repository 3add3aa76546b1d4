"""The node's plug points, assembled: what ``build_node_plugins`` hands the kubelet.

* network  - CNI: the node's namespace on the fabric, a bridge and one IP per pod
  (:mod:`labkit.node.cni`); needs root, otherwise pods run without a network of their own;
* volumes  - CSI: a hostpath driver serving this node on ``<state>/csi/<node>.sock`` and the
  hook that publishes a pod's claims through it (:mod:`labkit.node.csi`);
* devices  - device plugins: the Registration socket ``<state>/device-plugins/<node>/kubelet.sock``
  that plugins (``python -m labkit.node.deviceplugin.sample --kubelet-dir ...``) register with.

Options (all optional): ``kubeconfig`` (path or KubeConfig; default ``$KUBECONFIG``), ``client``
(a labkit Client: its kubeconfig is used), ``cni_plugin`` ("bridge" = Debian's Go plugin,
"lk-bridge" = labkit's Python one), ``fabric`` (router namespace name), ``network`` (False to
skip CNI), ``device_plugin_dir``, ``gpus`` (start the sample plugin with N simulated GPUs,
or the real ones when ``nvidia-smi`` works), ``csi`` (False to skip CSI).
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from labkit import paths
from labkit.client.kubeconfig import KubeConfig
from labkit.node import apiget
from labkit.node.kubelet.plugins import DevicePlugins, NetworkPlugin, NodePlugins, PluginError, VolumePlugin
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

            kc = self._kc if isinstance(self._kc, KubeConfig) else apiget.load(self._kc)
            self.proxy = KubeProxy(kc, [self._cni.node.netns_path]).start()
        except Exception as exc:  # pods still get IPs; only Services will not answer
            log.warning("node %s: kube-proxy did not start: %s", self.node_name, exc)

    def _lookup_cidr(self) -> str:
        try:
            kc = self._kc if isinstance(self._kc, KubeConfig) else apiget.load(self._kc)
            node = apiget.node(kc, self.node_name)
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


@dataclass
class LabkitNodePlugins(NodePlugins):
    """NodePlugins plus what must be stopped with the node (servers, namespaces)."""

    closers: list = field(default_factory=list)
    description: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        """Stop servers and remove the node's network namespace; volumes' data stays."""
        atexit.unregister(self.close)  # the kubelet closed us: nothing left for interpreter exit
        for fn in reversed(self.closers):
            try:
                fn()
            except Exception:  # closing one part must not stop the others
                log.exception("closing a node plug-in failed")
        self.closers.clear()


def cluster_scope(kubeconfig: KubeConfig | str | None) -> str:
    """A short id for the cluster a node belongs to (from its API server URL), ``""`` if unknown.

    Several clusters may run on one host at once, each with a "node-1": every per-node name on
    the host (network namespaces, sockets, IPAM files) carries this scope so they never collide.
    """
    try:
        kc = kubeconfig if isinstance(kubeconfig, KubeConfig) else apiget.load(kubeconfig)
    except Exception:  # no kubeconfig: a node on its own
        return ""
    return hashlib.sha256(kc.server.encode()).hexdigest()[:6]


def fabric_name(scope: str) -> str:
    """The router namespace of a cluster's nodes."""
    from labkit.node.cni.topology import FABRIC_NS

    return f"{FABRIC_NS}-{scope}" if scope else FABRIC_NS


def node_id(node_name: str, scope: str) -> str:
    return f"{scope}-{node_name}" if scope else node_name


def device_plugin_dir(node_name: str, kubeconfig: KubeConfig | str | None = None) -> Path:
    """Where a node's kubelet.sock is: start a device plugin with ``--kubelet-dir`` set to this."""
    return paths.state_dir() / "device-plugins" / node_id(node_name, cluster_scope(kubeconfig))


def csi_socket(node_name: str, kubeconfig: KubeConfig | str | None = None) -> Path:
    """The node's CSI hostpath driver socket."""
    return paths.state_dir() / "csi" / f"{node_id(node_name, cluster_scope(kubeconfig))}.sock"


def guess_kubeconfig(opts: dict) -> KubeConfig | str | None:
    """Where the node's API server is: the options, else ``$KUBECONFIG``, else the kubelet's own
    ``--kubeconfig`` argument (the hooks are built inside the kubelet process)."""
    if opts.get("kubeconfig") is not None:
        return opts["kubeconfig"]
    if opts.get("client") is not None:
        return opts["client"].config
    if os.environ.get("KUBECONFIG"):
        return None  # KubeConfig.load reads it
    argv = sys.argv
    for i, a in enumerate(argv):
        if a == "--kubeconfig" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--kubeconfig="):
            return a.split("=", 1)[1]
    return None


def build_node_plugins(node_name: str, pod_cidr: str | None = None, options: dict | None = None,
                       **kw) -> NodePlugins:
    """The kubelet's CNI, CSI and device-plugin hooks for ``node_name`` (see the module docstring).

    Keyword arguments are merged into ``options`` (``load_plugins(node, kubeconfig=...)`` works).
    ``close()`` on the result stops them; it also runs at interpreter exit, so a kubelet that
    exits normally leaves no network namespace behind.
    """
    opts = {**(options or {}), **kw}
    kc = guess_kubeconfig(opts)
    scope = opts.get("scope", cluster_scope(kc))
    out = LabkitNodePlugins()
    atexit.register(out.close)

    # --- network (CNI) --------------------------------------------------
    if opts.get("network", True) and paths.is_root():
        net = NodeNetworkPlugin(node_name, pod_cidr, kc, opts.get("cni_plugin", "bridge"), opts.get("fabric"), scope)
        out.network = net
        out.closers.append(net.close)
        out.description["network"] = f"CNI {net.plugin} + host-local on the node's podCIDR"
    else:
        out.network = NetworkPlugin()
        out.description["network"] = "none (CNI needs root): pods share the runtime's default network"

    # --- volumes (CSI) ----------------------------------------------------
    if opts.get("csi", True):
        from labkit.node.csi.driver import DRIVER_NAME, CSIDriverServer
        from labkit.node.csi.registration import register_on_node
        from labkit.node.csi.volumeplugin import CSIVolumePlugin

        sock = paths.state_dir() / "csi" / f"{node_id(node_name, scope)}.sock"
        driver = CSIDriverServer(sock, opts.get("csi_root"), node_id=node_name).start()
        vol = CSIVolumePlugin({DRIVER_NAME: driver.endpoint}, kc)
        out.volumes = vol
        out.closers += [driver.stop, vol.close, register_on_node(kc, node_name, driver.endpoint)]
        out.description["volumes"] = f"CSI {DRIVER_NAME} at {sock}"
    else:
        out.volumes = VolumePlugin()

    # --- devices (device plugins) -----------------------------------------
    from labkit.node.deviceplugin.manager import DeviceManager

    dp_dir = opts.get("device_plugin_dir") or paths.state_dir() / "device-plugins" / node_id(node_name, scope)
    mgr = DeviceManager(dp_dir, on_change=opts.get("on_device_change"))
    out.devices = mgr
    out.closers.append(mgr.close)
    out.description["devices"] = f"device plugins register at {mgr.socket}"
    if opts.get("gpus"):
        from labkit.node.deviceplugin.sample import SampleDevicePlugin

        plugin = SampleDevicePlugin(dp_dir, count=int(opts["gpus"]), real=opts.get("real_gpus")).start()
        out.closers.insert(len(out.closers) - 1, plugin.stop)
        mgr.wait_for("nvidia.com/gpu", sum(g.health == "Healthy" for g in plugin.gpus.values()), timeout=10)
        out.description["gpus"] = f"{len(plugin.gpus)} x nvidia.com/gpu: {plugin.kind}"
    return out


__all__ = ["DevicePlugins", "LabkitNodePlugins", "NodeNetworkPlugin", "build_node_plugins", "cluster_scope", "remove_node",
           "csi_socket", "device_plugin_dir"]


def remove_node(node_name: str, kubeconfig: KubeConfig | str | None = None) -> None:
    """Remove what a node's plug-ins left on this host when its kubelet could not close them
    (killed with SIGKILL): its network namespace (bridge, veths, iptables rules go with it), its
    router entry (the router too, once no node is left), IPAM files, CSI and device-plugin sockets.
    Volume data stays. ``Cluster.stop()`` can call this for every node after the kubelets exit."""
    import shutil

    from labkit.node.cni.topology import NodeNetwork

    scope = cluster_scope(kubeconfig)
    nid = node_id(node_name, scope)
    NodeNetwork(node_name, "0.0.0.0/32", fabric_name(scope), scope).teardown()
    shutil.rmtree(paths.state_dir() / "cni" / "ipam" / nid, ignore_errors=True)
    (paths.state_dir() / "csi" / f"{nid}.sock").unlink(missing_ok=True)
    shutil.rmtree(paths.state_dir() / "device-plugins" / nid, ignore_errors=True)
