"""Per-student budgets, in the manner of Educates' session sizes: a ResourceQuota caps the namespace,
a LimitRange gives every container defaults (so a plain ``kubectl run`` fits the quota) and a maximum."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Size:
    cpu: str            # requests.cpu for the whole namespace (limits may reach twice that)
    memory: str         # requests.memory for the whole namespace
    limit_cpu: str
    limit_memory: str
    pods: int

    def quota_hard(self) -> dict[str, str]:
        return {"requests.cpu": self.cpu, "requests.memory": self.memory, "limits.cpu": self.limit_cpu,
                "limits.memory": self.limit_memory, "pods": str(self.pods)}


SIZES: dict[str, Size] = {
    "small": Size("1", "1Gi", "2", "2Gi", 10),
    "medium": Size("2", "2Gi", "4", "4Gi", 20),
    "large": Size("4", "4Gi", "8", "8Gi", 40),
}

# every container gets these unless it asks: a lab's plain busybox pod fits any size
DEFAULT_REQUEST = {"cpu": "50m", "memory": "32Mi"}
DEFAULT_LIMIT = {"cpu": "200m", "memory": "128Mi"}
MAX_PER_CONTAINER = {"cpu": "1", "memory": "1Gi"}


def size(name: str) -> Size:
    """The budget called ``name``, or a ValueError that lists the sizes there are."""
    try:
        return SIZES[name]
    except KeyError:
        raise ValueError(f"unknown class size {name!r}: choose {', '.join(SIZES)}") from None


def limit_range() -> dict:
    """The LimitRange every student namespace gets."""
    return {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "student-defaults"},
            "spec": {"limits": [{"type": "Container", "default": dict(DEFAULT_LIMIT),
                                 "defaultRequest": dict(DEFAULT_REQUEST), "max": dict(MAX_PER_CONTAINER)}]}}


def resource_quota(s: Size) -> dict:
    """The ResourceQuota of a student namespace of size ``s``."""
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "student-quota"},
            "spec": {"hard": s.quota_hard()}}
