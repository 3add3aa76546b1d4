"""A small Kubernetes API client that labkit's scheduler, controllers and kubelet share.

It speaks plain Kubernetes REST (no labkit-only endpoints), so every component built on it can
be pointed at any API server: labkit's own, or kind, k3s, minikube or a cloud cluster.

* :mod:`labkit.client.kubeconfig` - read and write kubeconfig files
* :mod:`labkit.client.resources`  - which URL a resource lives at
* :mod:`labkit.client.rest`       - get/list/create/update/patch/delete/watch (asyncio + aiohttp)
* :mod:`labkit.client.informer`   - list+watch into a local cache with event handlers
* :mod:`labkit.client.events`     - record core/v1 Events the way components do
* :mod:`labkit.client.quantity`   - parse "500m", "64Mi", "1Gi"

and the Kubernetes API rules every component reads the same way:

* :mod:`labkit.client.selectors`  - label selectors (query strings, LabelSelector objects, Service maps)
* :mod:`labkit.client.taints`     - does a toleration match a taint
* :mod:`labkit.client.pods`       - pod active / terminal / Ready, and its resource requests
* :mod:`labkit.client.conditions` - ``status.conditions`` of Pods and Nodes
* :mod:`labkit.client.csinodes`   - CSINode / CSIDriver objects: which node runs which CSI driver
"""

from labkit.client.kubeconfig import KubeConfig
from labkit.client.resources import RESOURCES, Resource, resource
from labkit.client.rest import ApiError, Client

__all__ = ["ApiError", "Client", "KubeConfig", "RESOURCES", "Resource", "resource"]
