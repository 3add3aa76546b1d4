"""Which objects a ResourceQuota's scopes select (``spec.scopes`` and ``spec.scopeSelector``)."""

from __future__ import annotations

from labkit.controlplane.quota.usage import pod_resources

POD_SCOPES = ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass",
              "CrossNamespacePodAffinity")


def _best_effort(pod: dict) -> bool:
    return not pod_resources(pod, "requests") and not pod_resources(pod, "limits")


def _matches_one(scope: str, operator: str, values: list[str], pod: dict) -> bool:
    spec = pod.get("spec") or {}
    if scope == "Terminating":
        return spec.get("activeDeadlineSeconds") is not None
    if scope == "NotTerminating":
        return spec.get("activeDeadlineSeconds") is None
    if scope == "BestEffort":
        return _best_effort(pod)
    if scope == "NotBestEffort":
        return not _best_effort(pod)
    if scope == "PriorityClass":
        cls = spec.get("priorityClassName")
        if operator == "Exists":
            return bool(cls)
        if operator == "DoesNotExist":
            return not cls
        if operator == "In":
            return cls in values
        if operator == "NotIn":
            return cls not in values
    if scope == "CrossNamespacePodAffinity":
        return False
    return False


def selects(quota: dict, plural: str, group: str, obj: dict) -> bool:
    """Does this quota count ``obj``? A quota with no scopes counts everything in its namespace;
    scopes only ever select pods."""
    spec = quota.get("spec") or {}
    scopes = [(s, "Exists", []) for s in spec.get("scopes") or []]
    for expr in (spec.get("scopeSelector") or {}).get("matchExpressions") or []:
        scopes.append((expr.get("scopeName", ""), expr.get("operator", "Exists"), list(expr.get("values") or [])))
    if not scopes:
        return True
    if plural != "pods" or group:
        return False
    return all(_matches_one(s, op, vals, obj) for s, op, vals in scopes)
