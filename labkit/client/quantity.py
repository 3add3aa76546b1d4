"""Kubernetes resource quantities ("500m", "2", "64Mi", "1G") as plain numbers.

The scheduler and kubelet compare requests with capacity; both want integers: CPU in
millicores, everything else in base units (bytes, devices, pods).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

_SUFFIX = {
    "": 1, "m": Decimal("0.001"), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}


def parse(q: str | int | float) -> Decimal:
    """Parse a quantity into a Decimal of base units; raise ValueError with the bad text."""
    if isinstance(q, int | float):
        return Decimal(str(q))
    s = str(q).strip()
    for suf in ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "k", "M", "G", "T", "P", "E"):
        if s.endswith(suf):
            num, mult = s[: -len(suf)], _SUFFIX[suf]
            break
    else:
        num, mult = s, 1
    try:
        return Decimal(num) * Decimal(mult)
    except InvalidOperation:
        raise ValueError(f"not a Kubernetes quantity: {q!r} (examples: 500m, 2, 64Mi)") from None
    except ArithmeticError:  # decimal.Overflow: an exponent beyond what any quantity can hold
        raise ValueError(f"quantity out of range: {q!r}") from None


def milli_cpu(q: str | int | float) -> int:
    """CPU quantity -> millicores ("500m" -> 500, "2" -> 2000)."""
    return int((parse(q) * 1000).to_integral_value(rounding="ROUND_CEILING"))


def value(q: str | int | float) -> int:
    """Any other quantity -> base units, rounded up ("64Mi" -> 67108864)."""
    return int(parse(q).to_integral_value(rounding="ROUND_CEILING"))


def amount(name: str, q: str | int | float) -> int:
    """The integer the scheduler uses for resource ``name``: millicores for cpu, base units otherwise."""
    return milli_cpu(q) if name == "cpu" else value(q)
