"""labkit's kube-controller-manager: reconcile loops over the API.

ReplicaSet, Deployment (rolling updates, revisions, rollback), node lifecycle (Lease → taint →
eviction), garbage collection over ownerReferences, node IPAM (podCIDR) and Endpoints. Each is
an ordinary API client; :class:`~labkit.controlplane.controllers.manager.ControllerManager`
runs them in one process like kube-controller-manager.
"""
