"""Server-side apply, simplified: remember which fields each manager applied, in ``managedFields``.

``kubectl apply --server-side`` sends the whole desired configuration. The server merges it into
the live object (strategic-merge rules) and records the set of fields that configuration named,
as a ``FieldsV1`` set in the manager's ``managedFields`` entry. On the next apply, fields that the
manager named before but no longer names are removed. That is the part of server-side apply that
users notice. Conflicts between managers are not detected, and updates made with PUT/PATCH are not
recorded.
"""

from __future__ import annotations

import json
from typing import Any

from .codec import now_rfc3339
from .patch import STRATEGIC_PATCH, _merge_key_for, apply_patch

# metadata fields that identify the object rather than configure it
_IDENTITY = {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
             "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"}


def field_set(value: Any, top: bool = False) -> dict:
    """The FieldsV1 set (``{"f:spec": {"f:replicas": {}}}``) of the fields a configuration names."""
    out: dict[str, Any] = {}
    if not isinstance(value, dict):
        return out
    for k, v in value.items():
        if top and k in ("apiVersion", "kind", "status"):
            continue
        if top and k == "metadata" and isinstance(v, dict):
            v = {mk: mv for mk, mv in v.items() if mk not in _IDENTITY}
            if not v:
                continue
        key = f"f:{k}"
        if isinstance(v, dict):
            out[key] = field_set(v)
        elif isinstance(v, list) and v and all(isinstance(i, dict) for i in v) and _merge_key_for(k, v):
            mk = _merge_key_for(k, v)
            out[key] = {f"k:{json.dumps({mk: item.get(mk)}, separators=(',', ':'))}": field_set(item)
                        for item in v if mk in item}
        else:
            out[key] = {}
    return out


def _prune(value: Any, old: dict, new: dict, field: str = "") -> Any:
    """Remove from ``value`` what ``old`` names and ``new`` does not."""
    if isinstance(value, dict):
        for key, sub in old.items():
            if not key.startswith("f:"):
                continue
            name = key[2:]
            if name not in value:
                continue
            if key not in new:
                del value[name]
            elif sub:
                value[name] = _prune(value[name], sub, new[key], name)
        return value
    if isinstance(value, list):
        out = []
        for item in value:
            ident = None
            if isinstance(item, dict):
                mk = _merge_key_for(field, value)
                if mk and mk in item:
                    ident = f"k:{json.dumps({mk: item[mk]}, separators=(',', ':'))}"
            if ident is not None and ident in old and ident not in new:
                continue  # this manager applied the item before and dropped it now
            if ident is not None and ident in old and ident in new:
                item = _prune(item, old[ident], new[ident])
            out.append(item)
        return out
    return value


def apply(current: dict, config: dict, manager: str, api_version: str) -> dict:
    """The object after ``manager`` applies ``config`` to ``current``."""
    entries = list((current.get("metadata") or {}).get("managedFields") or [])
    mine = next((e for e in entries if e.get("manager") == manager and e.get("operation") == "Apply"), None)
    old = (mine or {}).get("fieldsV1") or {}
    new = field_set(config, top=True)
    obj = _prune(current, old, new)
    obj = apply_patch(STRATEGIC_PATCH, obj, {k: v for k, v in config.items() if k != "status"})
    entries = [e for e in entries if e is not mine] + [entry(manager, api_version, new)]
    obj.setdefault("metadata", {})["managedFields"] = entries
    return obj


def entry(manager: str, api_version: str, fields: dict) -> dict:
    """A managedFields entry for an Apply by ``manager``."""
    return {"manager": manager, "operation": "Apply", "apiVersion": api_version, "time": now_rfc3339(),
            "fieldsType": "FieldsV1", "fieldsV1": fields}
