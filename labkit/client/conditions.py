"""Status conditions (``status.conditions[]``) of Pods and Nodes, read the one way."""

from __future__ import annotations


def condition(obj: dict, type_: str) -> dict | None:
    """The condition of that type (``Ready``, ``PodScheduled`` ...), or None when it is not posted."""
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c
    return None


def is_ready(obj: dict) -> bool:
    """A Pod or Node whose ``Ready`` condition is ``True`` (missing or Unknown is not ready)."""
    c = condition(obj, "Ready")
    return c is not None and c.get("status") == "True"
