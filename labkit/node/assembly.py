"""A node assembled in one place: its configuration, its plug-ins, its kubelet.

:class:`NodeConfig` says what a node is (name, API server, runtime, advertised capacity,
labels, plug-ins); :func:`start_node` builds that node in this process: runtime, CNI/CSI/device
plug-ins (:func:`build_node_plugins`), client and kubelet. ``python -m labkit.node`` is the same
call from a command line, and :meth:`NodeConfig.argv` renders that command line from the same
config, so a cluster's kubelet processes and its in-process kubelets cannot drift apart.

The plug-ins (all optional):

* network  - CNI: the node's namespace on the fabric, a bridge and one IP per pod
  (:mod:`labkit.node.network`); needs root, otherwise pods run without a network of their own;
* volumes  - CSI: a hostpath driver serving this node on ``<state>/csi/<node>.sock`` and the
  hook that publishes a pod's claims through it (:mod:`labkit.node.csi`);
* devices  - device plugins: the Registration socket ``<state>/device-plugins/<node>/kubelet.sock``
  that plugins (``python -m labkit.node.deviceplugin.sample --kubelet-dir ...``) register with.

Options of :func:`build_node_plugins`: ``kubeconfig`` (path or KubeConfig; default
``$KUBECONFIG``), ``client`` (a labkit Client: its kubeconfig is used), ``cni_plugin`` ("bridge" =
Debian's Go plugin, "lk-bridge" = labkit's Python one), ``fabric`` (router namespace name),
``network`` (False to skip CNI), ``device_plugin_dir``, ``gpus`` (start the sample plugin with N
simulated GPUs, or the real ones when ``nvidia-smi`` works), ``csi`` (False to skip CSI).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import sys
from dataclasses import dataclass, field

from labkit import paths
from labkit.client import Client
from labkit.client.kubeconfig import KubeConfig
from labkit.node.kubelet.kubelet import DeviceNotifier, Kubelet
from labkit.node.kubelet.nodestatus import host_capacity
from labkit.node.kubelet.plugins import NetworkPlugin, NodePlugins, VolumePlugin
from labkit.node.network import NodeNetworkPlugin
from labkit.node.scope import cluster_scope, csi_socket, device_plugin_dir
from labkit.runtime.base import Runtime

log = logging.getLogger(__name__)


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

        sock = csi_socket(node_name, scope=scope)
        driver = CSIDriverServer(sock, opts.get("csi_root"), node_id=node_name).start()
        vol = CSIVolumePlugin({DRIVER_NAME: driver.endpoint}, kc)
        out.volumes = vol
        out.closers += [driver.stop, vol.close, register_on_node(kc, node_name, driver.endpoint)]
        out.description["volumes"] = f"CSI {DRIVER_NAME} at {sock}"
    else:
        out.volumes = VolumePlugin()

    # --- devices (device plugins) -----------------------------------------
    from labkit.node.deviceplugin.manager import DeviceManager

    dp_dir = opts.get("device_plugin_dir") or device_plugin_dir(node_name, scope=scope)
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


def load_plugins(node_name: str, **kw) -> NodePlugins:
    """:func:`build_node_plugins`, or no plug-ins (and a logged reason) when building them fails."""
    try:
        return build_node_plugins(node_name, **kw)
    except Exception:
        log.exception("node plugins failed to load; running pods without CNI/CSI/device plugins")
        return NodePlugins()


@dataclass
class NodeConfig:
    """What a node is; :func:`start_node` builds it, :meth:`argv` renders ``python -m labkit.node``."""

    name: str
    kubeconfig: str | None = None  #: API server (default ``$KUBECONFIG``)
    #: native | runc | crun | docker | simulated | unix:///path/cri.sock (None: the best one here)
    runtime: str | None = None
    port: int = 0  #: the kubelet's log port (0 = any free port on 127.0.0.1)
    cpu: str | None = None  #: advertised cpu capacity (default: this host's)
    memory: str | None = None  #: advertised memory capacity, e.g. 8Gi (default: this host's)
    max_pods: str = "110"
    labels: dict[str, str] = field(default_factory=dict)
    lease_interval: float = 5.0
    plugins: bool = True  #: load the CNI/CSI/device plug-ins
    gpus: int = 0  #: start the sample device plugin with N GPUs
    cleanup_on_exit: bool = False  #: on SIGTERM remove this node's pods (labkit cluster down)
    verbose: bool = False

    def capacity(self) -> dict[str, str]:
        """The capacity the Node advertises: this host's, with the configured overrides."""
        cap = host_capacity()
        if self.cpu:
            cap["cpu"] = self.cpu
        if self.memory:
            cap["memory"] = self.memory
        cap["pods"] = self.max_pods
        return cap

    def argv(self) -> list[str]:
        """The arguments of ``python -m labkit.node`` that start this same node in its own process."""
        out = ["--node-name", self.name]
        if self.kubeconfig:
            out += ["--kubeconfig", self.kubeconfig]
        if self.runtime:
            out += ["--runtime", self.runtime]
        if self.port:
            out += ["--port", str(self.port)]
        if self.cpu:
            out += ["--cpu", self.cpu]
        if self.memory:
            out += ["--memory", self.memory]
        if self.max_pods != "110":
            out += ["--max-pods", self.max_pods]
        for k, v in self.labels.items():
            out += ["--label", f"{k}={v}"]
        if self.lease_interval != 5.0:
            out += ["--lease-interval", str(self.lease_interval)]
        if not self.plugins:
            out.append("--no-plugins")
        if self.gpus:
            out += ["--gpus", str(self.gpus)]
        if self.cleanup_on_exit:
            out.append("--cleanup-on-exit")
        if self.verbose:
            out.append("-v")
        return out

    def command(self) -> list[str]:
        """The whole command line: this Python, ``-m labkit.node`` and :meth:`argv`."""
        return [sys.executable, "-m", "labkit.node", *self.argv()]


def open_runtime(spec: str | None) -> tuple[Runtime, str]:
    """The runtime named by ``spec`` (or the best one here), and a sentence saying which really runs."""
    if spec and spec.startswith("unix:"):
        from labkit.node.cri.remote import RemoteRuntime

        rt = RemoteRuntime(spec)
        return rt, f"CRI at {spec} (backend {rt.version().runtime_name})"
    import labkit.runtime as runtimes

    if spec:
        rt = runtimes.get(spec)
        return rt, f"in-process {rt.version().runtime_name}"
    rt = runtimes.default()
    return rt, f"in-process {getattr(rt, 'reason', rt.version().runtime_name)}"


@dataclass
class RunningNode:
    """A started node: its kubelet, and the client and runtime it owns."""

    config: NodeConfig
    kubelet: Kubelet
    client: Client
    runtime: Runtime
    owns_runtime: bool

    async def stop(self, kill_pods: bool | None = None) -> None:
        """Stop the kubelet (removing its pods when ``kill_pods``, default the config's
        ``cleanup_on_exit``), close its client and, if the node opened it, its runtime."""
        try:
            await self.kubelet.stop(kill_pods=self.config.cleanup_on_exit if kill_pods is None else kill_pods)
        finally:
            await self.client.close()
            if self.owns_runtime:
                self.runtime.close()


async def start_node(config: NodeConfig, runtime: Runtime | None = None) -> RunningNode:
    """Build the node ``config`` describes in this process and start its kubelet.

    ``runtime`` is used when given (the caller closes it); otherwise ``config.runtime`` is opened
    here and closed by :meth:`RunningNode.stop`. Returns once the kubelet's first pod list is done.
    """
    owns = runtime is None
    if runtime is None:
        runtime, _ = await asyncio.to_thread(open_runtime, config.runtime)
    notifier = DeviceNotifier()
    plugins = None
    if config.plugins:
        opts: dict = {"on_device_change": notifier}
        if config.kubeconfig:
            opts["kubeconfig"] = config.kubeconfig
        if config.gpus:
            opts["gpus"] = config.gpus
        plugins = await asyncio.to_thread(load_plugins, config.name, **opts)
    client = Client(config.kubeconfig, user_agent=f"labkit-kubelet/{config.name}")
    k = Kubelet(client, config.name, runtime, plugins, capacity=config.capacity(), labels=dict(config.labels),
                port=config.port, lease_interval=config.lease_interval)
    notifier.kubelet = k
    node = RunningNode(config, k, client, runtime, owns)
    try:
        await k.start()
    except BaseException:
        await node.stop(kill_pods=False)
        raise
    return node
