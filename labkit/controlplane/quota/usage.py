"""How much of each quota resource one object uses (the quota evaluators of Kubernetes)."""

from __future__ import annotations

from decimal import Decimal

from labkit.client import quantity
from labkit.controlplane.quota.amounts import Amounts

#: the object-count names that have a short form (``pods`` as well as ``count/pods``)
SHORT_COUNTS = {"pods": "pods", "services": "services", "configmaps": "configmaps", "secrets": "secrets",
                "persistentvolumeclaims": "persistentvolumeclaims", "resourcequotas": "resourcequotas",
                "replicationcontrollers": "replicationcontrollers"}
COMPUTE = ("cpu", "memory", "ephemeral-storage")


def count_name(plural: str, group: str) -> str:
    """``count/deployments.apps``; core resources have no group suffix (``count/pods``)."""
    return f"count/{plural}.{group}" if group else f"count/{plural}"


def pod_resources(pod: dict, which: str) -> dict[str, Decimal]:
    """A pod's effective requests (or limits): the sum over its containers, or the largest init
    container where that is more, as the scheduler and the quota both count them."""
    spec = pod.get("spec") or {}
    total: dict[str, Decimal] = {}
    for c in spec.get("containers") or []:
        for name, q in ((c.get("resources") or {}).get(which) or {}).items():
            total[name] = total.get(name, Decimal(0)) + quantity.parse(q)
    for c in spec.get("initContainers") or []:
        for name, q in ((c.get("resources") or {}).get(which) or {}).items():
            total[name] = max(total.get(name, Decimal(0)), quantity.parse(q))
    for name, q in (spec.get("overhead") or {}).items():
        if name in total:
            total[name] += quantity.parse(q)
    return total


def terminal(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def usage(plural: str, group: str, obj: dict) -> Amounts:
    """Every quota resource name ``obj`` uses, with its amount."""
    out: Amounts = {count_name(plural, group): Decimal(1)}
    if not group and plural in SHORT_COUNTS:
        out[SHORT_COUNTS[plural]] = Decimal(1)
    if plural == "pods" and not group:
        if terminal(obj):
            return {}  # a finished pod holds no quota
        for name, v in pod_resources(obj, "requests").items():
            out[f"requests.{name}"] = v
            if name in COMPUTE:
                out[name] = v  # "cpu" means requests.cpu
        for name, v in pod_resources(obj, "limits").items():
            out[f"limits.{name}"] = v
    if plural == "services" and not group:
        kind = (obj.get("spec") or {}).get("type", "ClusterIP")
        if kind == "NodePort":
            out["services.nodeports"] = Decimal(len((obj.get("spec") or {}).get("ports") or []))
        if kind == "LoadBalancer":
            out["services.loadbalancers"] = Decimal(1)
    if plural == "persistentvolumeclaims" and not group:
        req = (((obj.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
        if req is not None:
            out["requests.storage"] = quantity.parse(req)
            cls = (obj.get("spec") or {}).get("storageClassName")
            if cls:
                out[f"{cls}.storageclass.storage.k8s.io/requests.storage"] = quantity.parse(req)
                out[f"{cls}.storageclass.storage.k8s.io/persistentvolumeclaims"] = Decimal(1)
    return out


def missing_for(pod: dict, tracked: set[str]) -> list[str]:
    """``limits.cpu for: app`` for each tracked compute resource a container does not set: a quota
    on a compute resource needs every container to say how much it wants."""
    out = []
    spec = pod.get("spec") or {}
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    for res in sorted(tracked):
        which, _, name = res.partition(".")
        if res in COMPUTE:
            which, name = "requests", res
        if which not in ("requests", "limits") or name not in COMPUTE:
            continue
        lacking = [c.get("name", "") for c in containers if name not in ((c.get("resources") or {}).get(which) or {})]
        if lacking:
            out.append(f"{which}.{name} for: {','.join(lacking)}")
    return out
