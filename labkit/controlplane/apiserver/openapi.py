"""OpenAPI v3 component schemas built from the API types' field table.

``kubectl explain`` reads them, and kubectl computes ``apply`` patches from their
``x-kubernetes-patch-merge-key`` / ``x-kubernetes-patch-strategy`` markers. Those markers come
from the same merge-key table the server's strategic-merge patch uses (:mod:`.patch`), so what
kubectl sends and what the server does agree by construction.
"""

from __future__ import annotations

from typing import Any

from .patch import MERGE_KEYS, MERGE_SETS
from .protobuf import KIND_MESSAGES
from .schema import json_fields

_SCALARS: dict[str, dict[str, Any]] = {
    "string": {"type": "string"}, "duration": {"type": "string"},
    "int32": {"type": "integer", "format": "int32"}, "int64": {"type": "integer", "format": "int64"},
    "bool": {"type": "boolean"}, "bytes": {"type": "string", "format": "byte"},
    "double": {"type": "number", "format": "double"}, "float": {"type": "number", "format": "float"},
    "quantity": {"type": "string", "description": "a resource quantity such as 500m, 64Mi or 2"},
    "intstr": {"type": "string", "format": "int-or-string", "x-kubernetes-int-or-string": True},
    "time": {"type": "string", "format": "date-time"}, "microtime": {"type": "string", "format": "date-time"},
    "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    "fieldsv1": {"type": "object"},
}


def schema_name(message: str) -> str:
    """``core.v1.Pod`` -> ``io.k8s.api.core.v1.Pod`` (meta types live under apimachinery)."""
    if message.startswith("meta."):
        return "io.k8s.apimachinery.pkg.apis." + message
    return "io.k8s.api." + message


def _prop(typ: str, refs: set[str]) -> dict[str, Any]:
    if typ in _SCALARS:
        return dict(_SCALARS[typ])
    if typ.startswith("map:"):
        return {"type": "object", "additionalProperties": _prop(typ[4:], refs)}
    refs.add(typ)
    return {"allOf": [{"$ref": f"#/components/schemas/{schema_name(typ)}"}]}


def _list_prop(field: str, typ: str, refs: set[str]) -> dict[str, Any]:
    p: dict[str, Any] = {"type": "array", "items": _prop(typ, refs)}
    if "." in typ and typ not in _SCALARS:
        key = MERGE_KEYS.get(field)
        if field == "ports" and typ.endswith("ServicePort"):
            key = "port"
        elif field == "ports" and not typ.endswith("ContainerPort"):
            key = None
        if key and key in json_fields(typ):
            p["x-kubernetes-patch-merge-key"] = key
            p["x-kubernetes-patch-strategy"] = "merge,retainKeys" if field == "volumes" else "merge"
    elif field in MERGE_SETS:
        p["x-kubernetes-patch-strategy"] = "merge"
    return p


def message_schema(message: str, refs: set[str]) -> dict[str, Any]:
    """The OpenAPI schema of one message: its fields and their types."""
    props: dict[str, Any] = {}
    for name, (typ, repeated) in json_fields(message).items():
        props[name] = _list_prop(name, typ, refs) if repeated else _prop(typ, refs)
    return {"type": "object", "description": message.rsplit(".", 1)[-1], "properties": props}


def component_schemas(kinds: list[tuple[str, str, str]], messages: tuple[str, ...] = ()) -> dict[str, Any]:
    """Schemas for the given (group, version, kind)s, the given messages, and every message they reach."""
    out: dict[str, Any] = {}
    todo: list[str] = list(messages)
    tops: dict[str, tuple[str, str, str]] = {}
    for group, version, kind in kinds:
        gv = f"{group}/{version}" if group else version
        message = KIND_MESSAGES.get((gv, kind))
        if message:
            tops[message] = (group, version, kind)
            todo.append(message)
    while todo:
        message = todo.pop()
        name = schema_name(message)
        if name in out:
            continue
        refs: set[str] = set()
        s = message_schema(message, refs)
        if message in tops:
            group, version, kind = tops[message]
            s["properties"] = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, **s["properties"]}
            s["x-kubernetes-group-version-kind"] = [{"group": group, "version": version, "kind": kind}]
        out[name] = s
        todo.extend(refs)
    return out
