"""Docker-style sizes and CPU counts (``32m``, ``1g``, ``0.5``) → bytes and cores, with clear errors.

Read by hand rather than with ``re``: ``labkit run --rm`` reads ``--memory`` through here and pays
for every import it makes (``benchmarks/README.md``).
"""

from __future__ import annotations

from labkit.errors import LabkitError

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "ki": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2,
          "mi": 1024**2, "mib": 1024**2, "g": 1024**3, "gb": 1024**3, "gi": 1024**3, "gib": 1024**3}


class BadQuantity(LabkitError):
    """A memory size or CPU count that cannot be read."""


def _size(text: str) -> int | None:
    """``NUMBER[.FRACTION] [UNIT]`` in bytes (0 allowed), or None when it is not one."""
    s = text.strip()
    i = 0
    while i < len(s) and s[i].isdecimal():
        i += 1
    if i == 0:
        return None
    if i < len(s) and s[i] == ".":
        j = i + 1
        while j < len(s) and s[j].isdecimal():
            j += 1
        if j == i + 1:
            return None
        i = j
    unit = s[i:].strip()
    if unit and not (unit.isascii() and unit.isalpha()):
        return None
    mult = _UNITS.get(unit.lower())
    return None if mult is None else int(float(s[:i]) * mult)


def memory_bytes(value: str) -> int | None:
    """``"32m"`` → 33554432, as :func:`parse_memory` reads it; None where it would raise."""
    n = _size(value)
    return n if n is not None and n > 0 else None


def parse_memory(value: int | str) -> int:
    """``"32m"`` → 33554432. Plain numbers are bytes."""
    if isinstance(value, int):
        if value <= 0:
            raise BadQuantity(f"memory limit must be positive, got {value}")
        return value
    n = _size(str(value))
    if n is None:
        raise BadQuantity(f"cannot read memory size {value!r}; write it like 32m, 512k or 1g")
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
