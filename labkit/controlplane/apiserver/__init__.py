"""kube-apiserver: the Kubernetes REST API for the subset of resources labkit serves.

Every other component (scheduler, controllers, kubelet, kubectl, the official Python client)
talks to the cluster only through this server; the server alone talks to the store.

    from labkit.controlplane.apiserver import APIServer
    with APIServer("memory") as api:
        print(api.url)
"""

from labkit.controlplane.apiserver.server import APIServer

__all__ = ["APIServer"]
