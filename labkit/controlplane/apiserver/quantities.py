"""Resource quantities in requests and limits, checked as kube-apiserver's validation checks them.

The type check (:mod:`.schema`) only asks that a quantity look like one. Here its value counts:
a negative request or limit is refused with Kubernetes' words ("must be greater than or equal
to 0"), and so is one no component could count with - Kubernetes holds quantities in an int64
of base units (millicores for CPU), so ``1e999999999`` is out of range. The value is worked out
from the exponent first, so a huge exponent costs nothing.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from .errors import cause

_FORM = re.compile(r"^([+-]?)([0-9]*)(?:\.([0-9]*))?(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$")
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
INT64_MAX = 2**63 - 1
NEGATIVE = "must be greater than or equal to 0"


def value(text: Any) -> Decimal | None:
    """The quantity in base units, or None when it is not one (the type check reports that).

    Returns ``Decimal("Infinity")`` (with its sign) for a value far beyond any int64.
    """
    if isinstance(text, bool):
        return None
    if isinstance(text, int | float):
        text = repr(text)
    if not isinstance(text, str):
        return None
    m = _FORM.match(text.strip())
    if m is None or not (m.group(2) or m.group(3)):
        return None
    sign, whole, frac, suffix = m.group(1), m.group(2) or "0", m.group(3) or "", m.group(4) or ""
    digits = (whole + frac).lstrip("0")
    negative = sign == "-"
    if not digits:
        return Decimal(0)
    if suffix in _BINARY:
        exp10, factor = -len(frac), 2 ** _BINARY[suffix]
    elif suffix[:1] in ("e", "E"):
        exp10, factor = int(suffix[1:]) - len(frac), 1
    else:
        exp10, factor = _DECIMAL[suffix] - len(frac), 1
    # the magnitude is about len(digits) + exp10 decimal digits: decide "huge" before computing it
    if len(digits) + exp10 > 40:
        return Decimal("-Infinity") if negative else Decimal("Infinity")
    if len(digits) + exp10 < -40:
        return Decimal(0)
    amount = Decimal(int(digits)).scaleb(exp10) * factor
    return -amount if negative else amount


def check(resources: Any, path: str, parts: tuple[str, ...] = ("requests", "limits")) -> list[dict]:
    """Causes for the requests and limits of one container or claim (``path`` is its ``.resources``)."""
    if not isinstance(resources, dict):
        return []
    out = []
    for part in parts:
        items = resources.get(part)
        if not isinstance(items, dict):
            continue
        for name, text in items.items():
            amount = value(text)
            if amount is None:
                continue
            field = f"{path}.{part}[{name}]"
            if amount < 0:
                out.append(cause(field, f'Invalid value: "{text}": {NEGATIVE}'))
            elif (amount * 1000 if name == "cpu" else amount) > INT64_MAX:
                largest = "9223372036854775807m" if name == "cpu" else str(INT64_MAX)
                out.append(cause(field, f'Invalid value: "{text}": quantity out of range: must be less '
                                 f"than or equal to {largest}"))
    return out
