"""What every component reads from a Pod: does it still count, does it serve, what does it ask for.

The ReplicaSet and endpoints controllers count active and Ready pods; the scheduler sums the
requests a pod places on a node (so does anything that reports a node's load).
"""

from __future__ import annotations

from labkit.client import quantity
from labkit.client.conditions import is_ready


def is_pod_terminal(pod: dict) -> bool:
    """Finished for good (Succeeded or Failed): it holds no resources on its node any more."""
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_pod_active(pod: dict) -> bool:
    """Not being deleted and not finished: a pod that still counts towards its ReplicaSet."""
    return not pod["metadata"].get("deletionTimestamp") and not is_pod_terminal(pod)


def is_pod_ready(pod: dict) -> bool:
    """The pod's Ready condition is True: Services send it traffic."""
    return is_ready(pod)


def container_requests(container: dict) -> dict:
    """A container's requests as written; a resource with only a limit requests that limit."""
    res = container.get("resources") or {}
    req = dict(res.get("limits") or {})
    req.update(res.get("requests") or {})
    return req


def pod_requests(pod: dict) -> dict[str, int]:
    """Effective requests: sum over containers, at least the largest init container, plus
    ``spec.overhead`` and one pod slot (the ``pods`` resource)."""
    spec = pod.get("spec") or {}
    total: dict[str, int] = {}
    for c in spec.get("containers") or []:
        for name, q in container_requests(c).items():
            total[name] = total.get(name, 0) + quantity.amount(name, q)
    for c in spec.get("initContainers") or []:
        for name, q in container_requests(c).items():
            total[name] = max(total.get(name, 0), quantity.amount(name, q))
    for name, q in (spec.get("overhead") or {}).items():
        total[name] = total.get(name, 0) + quantity.amount(name, q)
    total["pods"] = 1
    return total
