"""Reading ``metav1.Time`` back: the RFC 3339 strings every API object carries
(``creationTimestamp``, ``lastTransitionTime``, a container's ``finishedAt`` ...)."""

from __future__ import annotations

from datetime import datetime


def parse_time(ts: str | None) -> float | None:
    """An RFC 3339 timestamp as seconds since the epoch; None when absent or malformed."""
    if not ts:
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
