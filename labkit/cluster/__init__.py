"""A whole Kubernetes-shaped cluster on this machine: ``from labkit.cluster import Cluster``.

* :mod:`~labkit.cluster.cluster`    - :class:`Cluster` (start, stop, look inside) and ``Cluster.connect``
* :mod:`~labkit.cluster.supervisor` - the component processes: spawn, wait, signal, reap
* :mod:`~labkit.cluster.inprocess`  - ``processes=False``: the components on one background thread
* :mod:`~labkit.cluster.statefile`  - ``cluster.json``, how ``labkit cluster status|down`` find a cluster
* :mod:`~labkit.cluster.cleanup`    - pods and nodes a killed kubelet left; dead notebooks' clusters
* :mod:`~labkit.cluster.gpuplugin`  - ``gpus=N``: the sample GPU device plugin as a kube-system DaemonSet
"""

import os

# The native runtime forks inside processes that also run gRPC servers (CRI, CSI, device plugins);
# gRPC's fork handlers then hang the child. Components inherit this from the cluster's environment.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

from labkit.cluster.cleanup import remove_stale_clusters, stale_clusters  # noqa: E402
from labkit.cluster.cluster import Cluster, ConnectedCluster  # noqa: E402
from labkit.cluster.statefile import clusters_dir  # noqa: E402
from labkit.cluster.supervisor import ClusterError, Component, free_port  # noqa: E402

__all__ = ["Cluster", "ClusterError", "Component", "ConnectedCluster", "clusters_dir", "free_port",
           "remove_stale_clusters", "stale_clusters"]
