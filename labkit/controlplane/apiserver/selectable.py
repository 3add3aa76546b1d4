"""The selectable attributes of stored objects (labels and selectable fields), cached per revision.

Label and field selectors look at a handful of values; decoding a whole pod for each list or each
watch event would dominate the cost at 150,000 pods. So each key keeps its (revision, labels,
fields) and is decoded again only when its revision moves.
"""

from __future__ import annotations

import json
import threading

from .resources import ResourceType
from .selectors import FieldSelector, LabelSelector

Attrs = tuple[dict, dict]  # labels, fields


def compute(rt: ResourceType, value: bytes) -> Attrs:
    """Labels and selectable fields of one stored value."""
    obj = json.loads(value)
    labels = (obj.get("metadata") or {}).get("labels") or {}
    fields = {name: get(obj) for name, get in rt.field_getters.items()}
    return labels, fields


class AttrCache:
    """key -> (mod_revision, attrs); thread-safe enough for one writer per key (dict ops are atomic)."""

    def __init__(self, max_entries: int = 400_000):
        self._cache: dict[str, tuple[int, Attrs]] = {}
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, rt: ResourceType, key: str, rev: int, value: bytes) -> Attrs:
        """Attributes of a key at a revision, decoding only when the revision moved."""
        hit = self._cache.get(key)
        if hit is not None and hit[0] == rev:
            return hit[1]
        attrs = compute(rt, value)
        if len(self._cache) >= self._max:
            with self._lock:
                self._cache.clear()
        self._cache[key] = (rev, attrs)
        return attrs

    def forget(self, key: str) -> None:
        self._cache.pop(key, None)


def matches(attrs: Attrs, lsel: LabelSelector, fsel: FieldSelector) -> bool:
    """Whether attributes satisfy both selectors."""
    return lsel.matches(attrs[0]) and fsel.matches(attrs[1])
