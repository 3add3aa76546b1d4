"""Per-cluster names on the host: every node's namespaces, sockets and IPAM files carry a scope.

Several clusters may run on one host at once, each with a "node-1": the scope (a short id of the
cluster's API server URL) keeps their per-node names apart. The node's assembly, its teardown
and labs that look for a node's sockets all derive names here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from labkit import paths
from labkit.client.kubeconfig import KubeConfig
from labkit.node.cni.topology import FABRIC_NS


def cluster_scope(kubeconfig: KubeConfig | str | None) -> str:
    """A short id for the cluster a node belongs to (from its API server URL), ``""`` if unknown."""
    try:
        kc = kubeconfig if isinstance(kubeconfig, KubeConfig) else KubeConfig.load(kubeconfig)
    except Exception:  # no kubeconfig: a node on its own
        return ""
    return hashlib.sha256(kc.server.encode()).hexdigest()[:6]


def fabric_name(scope: str) -> str:
    """The router namespace of a cluster's nodes."""
    return f"{FABRIC_NS}-{scope}" if scope else FABRIC_NS


def node_id(node_name: str, scope: str) -> str:
    return f"{scope}-{node_name}" if scope else node_name


def device_plugin_dir(node_name: str, kubeconfig: KubeConfig | str | None = None, scope: str | None = None) -> Path:
    """Where a node's kubelet.sock is: start a device plugin with ``--kubelet-dir`` set to this."""
    scope = cluster_scope(kubeconfig) if scope is None else scope
    return paths.state_dir() / "device-plugins" / node_id(node_name, scope)


def csi_socket(node_name: str, kubeconfig: KubeConfig | str | None = None, scope: str | None = None) -> Path:
    """The node's CSI hostpath driver socket."""
    scope = cluster_scope(kubeconfig) if scope is None else scope
    return paths.state_dir() / "csi" / f"{node_id(node_name, scope)}.sock"


def ipam_dir(node_name: str, scope: str) -> Path:
    """The node's host-local IPAM files."""
    return paths.state_dir() / "cni" / "ipam" / node_id(node_name, scope)
