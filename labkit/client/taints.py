"""Taints and tolerations: does a pod tolerate a node's taint?

The scheduler asks it before placing a pod (NoSchedule, NoExecute) and the node-lifecycle
controller before evicting one (NoExecute), so the rule lives here, below both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def toleration_matches(toleration: Mapping, taint: Mapping) -> bool:
    """One toleration against one taint: same effect (or any), then key and operator Equal/Exists.

    An empty key with ``Exists`` tolerates every taint; ``Equal`` (the default) compares values.
    """
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    op = toleration.get("operator") or "Equal"
    if not toleration.get("key"):
        return op == "Exists"
    if toleration["key"] != taint.get("key"):
        return False
    return op == "Exists" or (toleration.get("value") or "") == (taint.get("value") or "")


def tolerates(tolerations: Iterable[Mapping], taint: Mapping) -> bool:
    """True when one of the tolerations matches the taint."""
    return any(toleration_matches(t, taint) for t in tolerations)
