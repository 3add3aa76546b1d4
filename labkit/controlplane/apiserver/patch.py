"""The three PATCH flavours Kubernetes accepts: JSON merge, strategic merge and JSON patch.

Strategic merge is what ``kubectl apply`` and ``kubectl label`` send: lists of named things
(containers, env, ports, volumes, conditions ...) merge element by element on a *merge key*
instead of being replaced. Real Kubernetes reads the merge keys from Go struct tags; here they are a
small table by field name, which covers the fields the labs and kubectl touch.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from .errors import bad_request

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

# field name -> merge key for lists of objects (others are replaced wholesale)
MERGE_KEYS: dict[str, str] = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
    "imagePullSecrets": "name", "conditions": "type", "ownerReferences": "uid",
    "hostAliases": "ip", "addresses": "type", "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name", "ports": "containerPort",
}
# lists of scalars that merge as sets
MERGE_SETS = {"finalizers"}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


def _merge_key_for(field: str, items: list) -> str | None:
    key = MERGE_KEYS.get(field)
    if field == "ports" and items and isinstance(items[0], dict) and "containerPort" not in items[0]:
        return "port"  # Service ports merge on "port"
    return key


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Apply a strategic merge patch (the subset of directives kubectl emits)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    orders: dict[str, list] = {}
    retain = patch.get("$retainKeys")
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys"):
            continue
        if k.startswith("$setElementOrder/"):
            orders[k.split("/", 1)[1]] = v
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(v, list):
                result[field] = [x for x in result[field] if x not in v]
            continue
        if v is None:
            result.pop(k, None)
        elif isinstance(v, dict):
            merged = strategic_merge_patch(result.get(k), v)
            if merged is None:
                result.pop(k, None)
            else:
                result[k] = merged
        elif isinstance(v, list):
            result[k] = _merge_list(k, result.get(k), v)
        else:
            result[k] = v
    for field, order in orders.items():
        if isinstance(result.get(field), list):
            result[field] = _reorder(field, result[field], order)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(field: str, current: Any, patch: list) -> list:
    current = list(current) if isinstance(current, list) else []
    if field in MERGE_SETS:
        out = list(current)
        for x in patch:
            if x not in out:
                out.append(x)
        return out
    key = _merge_key_for(field, patch or current)
    if not key or not all(isinstance(x, dict) for x in patch):
        return [copy.deepcopy(x) for x in patch if not (isinstance(x, dict) and "$patch" in x)]
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [copy.deepcopy(x) for x in patch if x.get("$patch") != "replace"]
    out = list(current)
    for item in patch:
        if key not in item:
            raise bad_request(f"map: {item} does not contain declared merge key: {key}")
        idx = next((i for i, x in enumerate(out) if isinstance(x, dict) and x.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
            continue
        if idx is None:
            out.append(strategic_merge_patch({}, item))
        else:
            out[idx] = strategic_merge_patch(out[idx], item)
    return out


def _reorder(field: str, items: list, order: list) -> list:
    key = _merge_key_for(field, items)
    ident = (lambda x: x.get(key) if isinstance(x, dict) else x) if key else (lambda x: x)
    if not isinstance(order, list):
        raise bad_request(f"$setElementOrder/{field} must be a list")
    # merge keys may be any JSON value (a patch can say anything): rank them by their JSON text
    text = lambda v: json.dumps(v, sort_keys=True)  # noqa: E731
    wanted = [o.get(key) if isinstance(o, dict) else o for o in order]
    rank = {text(w): i for i, w in enumerate(wanted)}
    return sorted(items, key=lambda x: rank.get(text(ident(x)), len(rank)))


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"json patch: invalid path {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for p in parts:
        if isinstance(doc, dict):
            if p not in doc:
                raise bad_request(f"json patch: path element {p!r} does not exist")
            doc = doc[p]
        elif isinstance(doc, list):
            try:
                doc = doc[int(p)]
            except (ValueError, IndexError):
                raise bad_request(f"json patch: bad list index {p!r}") from None
        else:
            raise bad_request(f"json patch: cannot descend into {p!r}")
    return doc


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902: add, remove, replace, move, copy, test."""
    if not isinstance(ops, list):
        raise bad_request("json patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request(f"json patch: malformed operation {op!r}")
        kind, parts = op["op"], _pointer(op["path"])
        if kind == "test":
            if _walk(doc, parts) != op.get("value"):
                raise bad_request(f"json patch: test failed at {op['path']}")
            continue
        if kind in ("move", "copy"):
            src = _pointer(op.get("from", ""))
            value = copy.deepcopy(_walk(doc, src))
            if kind == "move":
                doc = _remove(doc, src)
            doc = _add(doc, parts, value)
        elif kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            doc = _remove(doc, parts)
        elif kind == "replace":
            doc = _remove(doc, parts)
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        else:
            raise bad_request(f"json patch: unknown op {kind!r}")
    return doc


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            try:
                i = int(last)
            except ValueError:
                raise bad_request(f"json patch: bad list index {last!r}") from None
            if not 0 <= i <= len(parent):
                raise bad_request(f"json patch: list index {i} out of range")
            parent.insert(i, value)
    else:
        raise bad_request("json patch: parent is not a container")
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    if not parts:
        raise bad_request("json patch: cannot remove the whole document")
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise bad_request(f"json patch: path {'/'.join(parts)} does not exist")
        del parent[last]
    elif isinstance(parent, list):
        try:
            parent.pop(int(last))
        except (ValueError, IndexError):
            raise bad_request(f"json patch: bad list index {last!r}") from None
    return doc


def apply_patch(content_type: str, current: dict, body: Any) -> dict:
    """Dispatch on the request's Content-Type."""
    if content_type == MERGE_PATCH:
        out = merge_patch(current, body)
    elif content_type == STRATEGIC_PATCH:
        out = strategic_merge_patch(current, body)
    elif content_type == JSON_PATCH:
        out = json_patch(current, body)
    else:
        raise bad_request(f"unsupported patch type {content_type!r}")
    if not isinstance(out, dict):
        raise bad_request("the patch did not produce an object")
    return out
