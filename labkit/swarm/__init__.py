"""A real multi-node Docker Swarm on one machine: three Docker Engines, each in its own network
namespace with its own data root, exec root and socket, linked by a bridge labkit makes.

Chapter 3 and lab 41 compare Swarm with Kubernetes on the same app; a one-node swarm cannot show
a routing mesh, placement, or Raft quorum, so :class:`Swarm` builds three nodes. What this host's
kernel allows (IPVS for the ingress mesh, VXLAN for overlay networks, overlay2 on the data root) is
probed by :func:`host_allows`; the lab says which parts it could not show.

* :mod:`labkit.swarm.network` - the bridge, the namespaces and their addresses
* :mod:`labkit.swarm.engine` - one ``dockerd`` in one namespace
* :mod:`labkit.swarm.cluster` - three engines made into a swarm of managers
* :mod:`labkit.swarm.hostcheck` - what the kernel offers
* :mod:`labkit.swarm.leftovers` - the ``swarm-engines`` kind of ``labkit gc``
* :mod:`labkit.swarm.onenode` - the one-node fallback on the host's engine, and :func:`start_swarm`
"""

from labkit.swarm.cluster import Swarm
from labkit.swarm.engine import Engine
from labkit.swarm.hostcheck import HostCheck, host_allows
from labkit.swarm.onenode import OneNodeSwarm, start_swarm

__all__ = ["Engine", "HostCheck", "OneNodeSwarm", "Swarm", "host_allows", "start_swarm"]
