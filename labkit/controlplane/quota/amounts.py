"""Quota amounts: quantities as exact Decimals, added, compared and printed as Kubernetes prints them."""

from __future__ import annotations

from decimal import Decimal

from labkit.client import quantity

Amounts = dict[str, Decimal]

_BINARY = (("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10))
_DECIMAL = (("E", 10**18), ("P", 10**15), ("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3))


def parse_all(values: dict | None) -> Amounts:
    """``{"requests.cpu": "500m"}`` -> ``{"requests.cpu": Decimal("0.5")}`` (a bad quantity raises ValueError)."""
    return {str(k): quantity.parse(v) for k, v in (values or {}).items()}


def fmt(name: str, v: Decimal) -> str:
    """One amount in the canonical text a Kubernetes Quantity would show: 1500m, 2, 1Gi, 10."""
    if v != v.to_integral_value():
        milli = v * 1000
        return f"{int(milli)}m" if milli == milli.to_integral_value() else str(v)
    n = int(v)
    memory_like = any(w in name for w in ("memory", "storage"))
    for suffix, size in (_BINARY if memory_like else ()):
        if n and n % size == 0:
            return f"{n // size}{suffix}"
    if memory_like:
        for suffix, size in _DECIMAL:
            if n and n % size == 0:
                return f"{n // size}{suffix}"
    return str(n)


def fmt_all(values: Amounts) -> dict[str, str]:
    return {k: fmt(k, v) for k, v in sorted(values.items())}


def add(a: Amounts, b: Amounts) -> Amounts:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, Decimal(0)) + v
    return out


def pretty(values: Amounts) -> str:
    """``limits.cpu=2,limits.memory=1Gi``: sorted, as kube-apiserver's quota messages print them."""
    return ",".join(f"{k}={fmt(k, v)}" for k, v in sorted(values.items()))
