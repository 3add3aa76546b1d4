"""What only the scheduler reads from a Pod: requests as scoring sees them, and node affinity.

The requests and tolerations every component shares are :mod:`labkit.client.pods` and
:mod:`labkit.client.taints`.
"""

from __future__ import annotations

from labkit.client import quantity
from labkit.client.pods import container_requests

# kube-scheduler scores a container without requests as if it asked for this much
# (so empty pods still spread); filters use the real requests.
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024


def nonzero_requests(pod: dict) -> tuple[int, int]:
    """(milli-cpu, memory) for scoring, with kube-scheduler's defaults for containers that ask nothing."""
    cpu = mem = 0
    for c in (pod.get("spec") or {}).get("containers") or []:
        req = container_requests(c)
        cpu += quantity.milli_cpu(req["cpu"]) if "cpu" in req else DEFAULT_MILLI_CPU
        mem += quantity.value(req["memory"]) if "memory" in req else DEFAULT_MEMORY
    return cpu, mem


def required_terms(pod: dict) -> list[dict]:
    """requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms (ORed)."""
    aff = ((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}
    req = aff.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    return req.get("nodeSelectorTerms") or []
