"""Docker-style sizes and CPU counts (``32m``, ``1g``, ``0.5``) → bytes and cores, with clear errors."""

from __future__ import annotations

import re

from labkit.errors import LabkitError

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "ki": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2,
          "mi": 1024**2, "mib": 1024**2, "g": 1024**3, "gb": 1024**3, "gi": 1024**3, "gib": 1024**3}


class BadQuantity(LabkitError):
    """A memory size or CPU count that cannot be read."""


def parse_memory(value: int | str) -> int:
    """``"32m"`` → 33554432. Plain numbers are bytes."""
    if isinstance(value, int):
        if value <= 0:
            raise BadQuantity(f"memory limit must be positive, got {value}")
        return value
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
    if not m or m.group(2).lower() not in _UNITS:
        raise BadQuantity(f"cannot read memory size {value!r}; write it like 32m, 512k or 1g")
    n = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if n <= 0:
        raise BadQuantity(f"memory limit must be positive, got {value!r}")
    return n


def parse_cpus(value: float | str) -> float:
    """``"0.5"`` → 0.5 cores (CFS quota 50 ms per 100 ms period)."""
    try:
        n = float(value)
    except (TypeError, ValueError):
        raise BadQuantity(f"cannot read CPU count {value!r}; write it like 0.5 or 2") from None
    if n <= 0:
        raise BadQuantity(f"CPU count must be positive, got {value!r}")
    return n
