"""The Node authorizer (with NodeRestriction's checks): a kubelet, ``system:node:NAME`` in group
``system:nodes``, may change only its own Node, Lease and CSINode, the status of pods bound to
it, and delete those pods; it reads a Secret or ConfigMap only when a pod on its node uses it.

kube-apiserver splits this between the Node authorizer (a graph of which node uses which object)
and the NodeRestriction admission plugin (whose messages the 403s here repeat). Here one module
does both, from the apiserver's pods-by-node index and the store.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from .. import errors
from .attributes import Attributes
from .user import NODES

NODE_PREFIX = "system:node:"
ALLOW, NO_OPINION = "allow", "no-opinion"

# what every kubelet reads to run its pods and the proxy (kube-apiserver: the system:node rules)
_READ_ANY = {("", "nodes"), ("", "pods"), ("", "services"), ("", "endpoints"), ("discovery.k8s.io", "endpointslices"),
             ("", "persistentvolumeclaims"), ("", "persistentvolumes"), ("storage.k8s.io", "csidrivers"),
             ("storage.k8s.io", "csinodes"), ("storage.k8s.io", "storageclasses"), ("", "namespaces"),
             ("coordination.k8s.io", "leases")}
_READ = {"get", "list", "watch"}
_WRITE = {"create", "update", "patch", "delete"}

PodNode = Callable[[str, str], Awaitable["str | None"]]  # (namespace, name) -> the pod's node, None if absent
UsedBy = Callable[[str, str, str, str], Awaitable[bool]]  # (node, resource, namespace, name) -> a pod there uses it


def node_name(a: Attributes) -> str | None:
    """The node a request comes from, or None when its user is no kubelet."""
    if a.user.name.startswith(NODE_PREFIX) and NODES in a.user.groups:
        return a.user.name[len(NODE_PREFIX):] or None
    return None


def _refused(resource: str, name: str, message: str) -> errors.StatusError:
    detail = f'{resource} "{name}" is forbidden: {message}' if name else f"{resource} is forbidden: {message}"
    return errors.StatusError(403, "Forbidden", detail, {"name": name, "group": "", "kind": resource})


async def authorize(a: Attributes, pod_node: PodNode, used_by: UsedBy,
                    body_name: str | None = None) -> tuple[str, errors.StatusError | None]:
    """ALLOW, NO_OPINION (RBAC may still allow), or a 403 worded as NodeRestriction words it."""
    node = node_name(a)
    if node is None or not a.resource_request:
        return NO_OPINION, None
    gr, verb, sub = (a.api_group, a.resource), a.verb, a.subresource
    name = a.name or body_name or ""
    if gr == ("", "nodes"):
        if verb in _READ and not sub:
            return ALLOW, None
        if verb in _WRITE and sub in ("", "status"):
            if name == node:
                return ALLOW, None
            return NO_OPINION, _refused("nodes", name, f'node "{node}" is not allowed to modify node "{name}"')
        return NO_OPINION, None
    if gr == ("", "pods"):
        if verb in _READ and not sub:
            return ALLOW, None
        if (sub == "status" and verb in ("update", "patch")) or (not sub and verb == "delete"):
            bound = await pod_node(a.namespace, name)
            if bound == node:
                return ALLOW, None
            what = "update pod status" if sub else "delete pods"
            return NO_OPINION, _refused("pods", name,
                                        f'node "{node}" can only {what} for pods with spec.nodeName set to itself')
        return NO_OPINION, None
    if gr in (("", "events"), ("events.k8s.io", "events")) and verb in ("create", "update", "patch"):
        return ALLOW, None
    if gr in (("", "secrets"), ("", "configmaps")) and verb == "get" and not sub and name:
        if await used_by(node, a.resource, a.namespace, name):
            return ALLOW, None
        return NO_OPINION, None  # kube-apiserver: "no relationship found between node and this object"
    if gr in (("coordination.k8s.io", "leases"), ("storage.k8s.io", "csinodes")) and verb in _WRITE:
        if gr[1] == "leases" and a.namespace != "kube-node-lease":
            return NO_OPINION, None
        return (ALLOW, None) if name == node else (NO_OPINION, None)
    if gr == ("storage.k8s.io", "csidrivers") and verb in ("create", "update", "patch"):
        return ALLOW, None  # labkit's kubelets register the CSI drivers they start (a real cluster ships them)
    if gr in _READ_ANY and verb in _READ and not sub:
        return ALLOW, None
    return NO_OPINION, None


def pod_uses(pod: dict, resource: str, name: str) -> bool:
    """Does this pod mount, or take environment from, the Secret or ConfigMap ``name``?"""
    spec = pod.get("spec") or {}
    key = "secret" if resource == "secrets" else "configMap"
    ref_key = "secretRef" if resource == "secrets" else "configMapRef"
    key_ref = "secretKeyRef" if resource == "secrets" else "configMapKeyRef"
    for v in spec.get("volumes") or ():
        src = v.get(key) or {}
        if (src.get("secretName") if resource == "secrets" else src.get("name")) == name:
            return True
        for p in (v.get("projected") or {}).get("sources") or ():
            if (p.get(key) or {}).get("name") == name:
                return True
    if resource == "secrets" and any(s.get("name") == name for s in spec.get("imagePullSecrets") or ()):
        return True
    for c in [*(spec.get("containers") or ()), *(spec.get("initContainers") or ())]:
        for e in c.get("envFrom") or ():
            if (e.get(ref_key) or {}).get("name") == name:
                return True
        for e in c.get("env") or ():
            if ((e.get("valueFrom") or {}).get(key_ref) or {}).get("name") == name:
                return True
    return False


def decode(value: bytes | None) -> dict:
    return json.loads(value) if value else {}
