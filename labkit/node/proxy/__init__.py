"""kube-proxy, small: Service ClusterIPs forwarded to ready pods with iptables DNAT in each node."""

from labkit.node.proxy.proxy import KubeProxy
from labkit.node.proxy.rules import ServicePort, service_ports

__all__ = ["KubeProxy", "ServicePort", "service_ports"]
