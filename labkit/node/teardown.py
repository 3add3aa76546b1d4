"""Remove what a node left on this host when its kubelet could not close its own plug-ins.

A kubelet that exits normally closes them itself (see :mod:`labkit.node.assembly`); one killed
with SIGKILL leaves its network namespace, router entry, IPAM files and sockets behind, and the
cluster's clean-up calls :func:`remove_node` for every node after the kubelets are gone.
"""

from __future__ import annotations

import shutil

from labkit.client.kubeconfig import KubeConfig
from labkit.node.cni.plugin import POD_NS_PREFIX
from labkit.node.cni.topology import NodeNetwork, delete_netns
from labkit.node.scope import cluster_scope, csi_socket, device_plugin_dir, fabric_name, ipam_dir


def remove_node(node_name: str, kubeconfig: KubeConfig | str | None = None) -> None:
    """The node's network namespace (bridge, veths, iptables rules go with it), its router entry
    (the router too, once no node is left), IPAM files, CSI and device-plugin sockets. Volume data stays."""
    scope = cluster_scope(kubeconfig)
    NodeNetwork(node_name, "0.0.0.0/32", fabric_name(scope), scope).teardown()
    shutil.rmtree(ipam_dir(node_name, scope), ignore_errors=True)
    csi_socket(node_name, scope=scope).unlink(missing_ok=True)
    shutil.rmtree(device_plugin_dir(node_name, scope=scope), ignore_errors=True)


def remove_pod_netns(sandbox_id: str) -> None:
    """The namespace the CNI plug-in made for a sandbox whose runtime has none (simulated): a
    killed kubelet's plug-in knew it only in memory, so it is removed here by its name."""
    delete_netns(POD_NS_PREFIX + sandbox_id[:12])
