"""What the scheduler reads from a Pod: its resource requests, tolerations and node constraints."""

from __future__ import annotations

from labkit.client import quantity

# kube-scheduler scores a container without requests as if it asked for this much
# (so empty pods still spread); filters use the real requests.
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024


def pod_requests(pod: dict) -> dict[str, int]:
    """Effective requests: sum over containers, at least the largest init container, plus one pod slot."""
    spec = pod.get("spec") or {}
    total: dict[str, int] = {}
    for c in spec.get("containers") or []:
        for name, q in _container_requests(c).items():
            total[name] = total.get(name, 0) + quantity.amount(name, q)
    for c in spec.get("initContainers") or []:
        for name, q in _container_requests(c).items():
            total[name] = max(total.get(name, 0), quantity.amount(name, q))
    for name, q in (spec.get("overhead") or {}).items():
        total[name] = total.get(name, 0) + quantity.amount(name, q)
    total["pods"] = 1
    return total


def nonzero_requests(pod: dict) -> tuple[int, int]:
    """(milli-cpu, memory) for scoring, with kube-scheduler's defaults for containers that ask nothing."""
    cpu = mem = 0
    for c in (pod.get("spec") or {}).get("containers") or []:
        req = _container_requests(c)
        cpu += quantity.milli_cpu(req["cpu"]) if "cpu" in req else DEFAULT_MILLI_CPU
        mem += quantity.value(req["memory"]) if "memory" in req else DEFAULT_MEMORY
    return cpu, mem


def _container_requests(c: dict) -> dict:
    res = c.get("resources") or {}
    req = dict(res.get("limits") or {})  # requests default to limits when only limits are set
    req.update(res.get("requests") or {})
    return req


def tolerates(tolerations: list[dict], taint: dict) -> bool:
    """True when one toleration matches the taint (key, operator Equal/Exists, value, effect)."""
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        op = t.get("operator") or "Equal"
        if not t.get("key"):
            if op == "Exists":
                return True
            continue
        if t["key"] != taint.get("key"):
            continue
        if op == "Exists" or (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def required_terms(pod: dict) -> list[dict]:
    """requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms (ORed)."""
    aff = ((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}
    req = aff.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    return req.get("nodeSelectorTerms") or []
