"""A custom resource's ``additionalPrinterColumns``: the columns ``kubectl get`` shows for it.

Each column names a JSONPath into the object (``.spec.replicas``, ``.status.conditions[0].status``,
``.status.conditions[?(@.type=="Ready")].status``) and a type; ``date`` columns print as an age, as
kubectl prints AGE. Without columns a custom resource shows NAME and AGE.
"""

from __future__ import annotations

import re
from typing import Any

from labkit.client.timestamps import parse_time

from . import tables

_STEP = re.compile(r"""\.([^.\[]+)|\[(\d+)\]|\[\?\(@\.([\w.]+)\s*==\s*["']([^"']*)["']\)\]""")


def json_path(obj: Any, path: str) -> Any:
    """The value at a simple JSONPath (fields, indexes, one equality filter per step), or None."""
    path = path.strip().strip("{}")
    cur = obj
    pos = 0
    while pos < len(path):
        m = _STEP.match(path, pos)
        if m is None or cur is None:
            return None
        field, index, key, want = m.groups()
        if field is not None:
            cur = cur.get(field) if isinstance(cur, dict) else None
        elif index is not None:
            cur = cur[int(index)] if isinstance(cur, list) and int(index) < len(cur) else None
        else:
            cur = next((x for x in cur or [] if isinstance(x, dict) and str(json_path(x, "." + key)) == want), None) \
                if isinstance(cur, list) else None
        pos = m.end()
    return cur


def _cell(value: Any, typ: str, now: float) -> Any:
    if value is None:
        return None
    if typ == "date":
        t = parse_time(value if isinstance(value, str) else None)
        return "<unknown>" if t is None else tables.human_duration(now - t)
    if typ == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if typ == "boolean" and isinstance(value, bool):
        return value
    if typ == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return value if isinstance(value, str) else str(value)


def printer(columns: list[dict]) -> tuple[list[tables.Column], tables.RowFn]:
    """The Table columns and row function for a CRD version's additionalPrinterColumns."""
    if not columns:
        return tables.DEFAULT_PRINTER
    cols = [("Name", "string", 0)] + [(c["name"], c.get("type", "string"), int(c.get("priority", 0)))
                                       for c in columns]

    def row(obj: dict, now: float) -> list:
        return [obj["metadata"]["name"]] + [_cell(json_path(obj, c.get("jsonPath", "")), c.get("type", "string"), now)
                                            for c in columns]
    return cols, row
