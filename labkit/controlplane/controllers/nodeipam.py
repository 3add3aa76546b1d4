"""Node IPAM: give every node a slice of the cluster's pod network (``spec.podCIDR``).

The CNI plugin on each node hands out pod IPs from that slice, so pod IPs never collide across
nodes: node 0 gets 10.244.0.0/24, node 1 10.244.1.0/24, and so on.
"""

from __future__ import annotations

import ipaddress

from labkit.controlplane.controllers.base import Controller


class NodeIpamController(Controller):
    name = "node-ipam-controller"
    workers = 1

    def __init__(self, *a, cluster_cidr: str = "10.244.0.0/16", node_mask: int = 24, **kw):
        super().__init__(*a, **kw)
        self.subnets = ipaddress.ip_network(cluster_cidr).subnets(new_prefix=node_mask)
        self.pool = list(self.subnets)
        self.nodes = self.informers.get("nodes")
        self.nodes.add_handler(lambda n: self.queue.add(n["metadata"]["name"]),
                               lambda o, n: self.queue.add(n["metadata"]["name"]))

    async def sync(self, key: str) -> None:
        node = self.nodes.cache.get(key)
        if node is None or (node.get("spec") or {}).get("podCIDR"):
            return
        used = {(n.get("spec") or {}).get("podCIDR") for n in self.nodes.cache.values()}
        cidr = next((str(s) for s in self.pool if str(s) not in used), None)
        if cidr is None:
            self.recorder.event(node, "Warning", "CIDRNotAvailable", "no pod CIDR left in the cluster range")
            return
        await self.client.patch("nodes", key, {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
        node.setdefault("spec", {})["podCIDR"] = cidr  # the cache catches up through the watch
        self.recorder.event(node, "Normal", "CIDRAssignmentSucceeded", f"Node {key} got pod CIDR {cidr}")
