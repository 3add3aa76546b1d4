"""A custom resource's structural schema: pruning, defaulting and validation of its instances.

A CustomResourceDefinition's ``openAPIV3Schema`` is the only type the apiserver knows for its
kind. Like kube-apiserver, an instance is first pruned (fields the schema does not declare are
dropped, unless ``x-kubernetes-preserve-unknown-fields`` keeps them), then defaulted (``default``),
then validated; every violation becomes one cause of a 422 Invalid, worded as Kubernetes words it
(``spec.replicas: Invalid value: 15: spec.replicas in body should be less than or equal to 10``).
``apiVersion``, ``kind`` and ``metadata`` are the apiserver's own and are not checked here.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from .errors import cause

ROOT_FIELDS = ("apiVersion", "kind", "metadata")
_JSON_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}


def _preserves(schema: dict) -> bool:
    return bool(schema.get("x-kubernetes-preserve-unknown-fields"))


def prune(obj: Any, schema: dict | None, path: str = "", root: bool = True) -> list[str]:
    """Drop the fields ``schema`` does not declare, in place; returns their paths (for warnings)."""
    if not isinstance(schema, dict):
        return []
    dropped: list[str] = []
    if isinstance(obj, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        embedded = schema.get("x-kubernetes-embedded-resource")
        for key in list(obj):
            sub = f"{path}.{key}" if path else key
            if (root or embedded) and key in ROOT_FIELDS:
                continue
            if props is not None and key in props:
                dropped += prune(obj[key], props[key], sub, root=False)
            elif isinstance(extra, dict):
                dropped += prune(obj[key], extra, sub, root=False)
            elif extra is True or _preserves(schema) or (props is None and extra is None and not root
                                                         and schema.get("type") != "object"):
                continue
            else:
                del obj[key]
                dropped.append(sub)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(obj):
            dropped += prune(item, schema["items"], f"{path}[{i}]", root=False)
    return dropped


def apply_defaults(obj: Any, schema: dict | None) -> None:
    """Fill in ``default`` values for absent properties, as kube-apiserver does on read and write."""
    if not isinstance(schema, dict):
        return
    if isinstance(obj, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if not isinstance(sub, dict):
                continue
            if key not in obj and "default" in sub:
                obj[key] = copy.deepcopy(sub["default"])
            if key in obj:
                apply_defaults(obj[key], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, value in obj.items():
                if key not in (schema.get("properties") or {}):
                    apply_defaults(value, extra)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for item in obj:
            apply_defaults(item, schema["items"])


def go_value(v: Any) -> str:
    """A value as Kubernetes prints it in a cause: strings quoted, numbers and booleans bare."""
    if isinstance(v, dict):
        return "map[string]interface {}{...}"
    if isinstance(v, list):
        return "[]interface {}{...}"
    return json.dumps(v)


def _type_of(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer()):
        return "integer"
    if isinstance(v, float):
        return "number"
    for name, typ in _JSON_TYPES.items():
        if isinstance(v, typ):
            return name
    return "null"


def _type_ok(want: str, v: Any) -> bool:
    got = _type_of(v)
    return got == want or (want == "number" and got == "integer")


def validate(obj: Any, schema: dict | None, path: str = "", root: bool = True) -> list[dict]:
    """Every way ``obj`` breaks ``schema``, as Kubernetes-shaped causes."""
    if not isinstance(schema, dict):
        return []
    where = path or "<root>"
    want = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        if _type_of(obj) not in ("integer", "string"):
            return [cause(where, f'Invalid value: "{_type_of(obj)}": {where} in body must be of type '
                          f'integer-or-string: "{_type_of(obj)}"', "FieldValueTypeInvalid")]
    elif want and not _type_ok(want, obj):
        got = _type_of(obj)
        return [cause(where, f'Invalid value: "{got}": {where} in body must be of type {want}: "{got}"',
                      "FieldValueTypeInvalid")]
    out: list[dict] = []
    if "enum" in schema and obj not in schema["enum"]:
        allowed = ", ".join(go_value(e) for e in schema["enum"])
        out.append(cause(where, f"Unsupported value: {go_value(obj)}: supported values: {allowed}",
                         "FieldValueNotSupported"))
    if isinstance(obj, int | float) and not isinstance(obj, bool):
        out += _bounds(obj, schema, where)
    if isinstance(obj, str):
        if "maxLength" in schema and len(obj) > schema["maxLength"]:
            out.append(cause(where, f"Too long: may not be longer than {schema['maxLength']}", "FieldValueTooLong"))
        if "minLength" in schema and len(obj) < schema["minLength"]:
            out.append(cause(where, f"Invalid value: {go_value(obj)}: {where} in body should be at least "
                                    f"{schema['minLength']} chars long"))
        if "pattern" in schema and not re.search(schema["pattern"], obj):
            out.append(cause(where, f"Invalid value: {go_value(obj)}: {where} in body should match "
                                    f"'{schema['pattern']}'"))
    if isinstance(obj, list):
        if "maxItems" in schema and len(obj) > schema["maxItems"]:
            out.append(cause(where, f"Too many: {len(obj)}: must have at most {schema['maxItems']} items",
                             "FieldValueTooMany"))
        if "minItems" in schema and len(obj) < schema["minItems"]:
            out.append(cause(where, f"Invalid value: {len(obj)}: {where} in body should have at least "
                                    f"{schema['minItems']} items"))
        for i, item in enumerate(obj):
            out += validate(item, schema.get("items"), f"{path}[{i}]", root=False)
    if isinstance(obj, dict):
        props = schema.get("properties") or {}
        for name in schema.get("required") or []:
            if name not in obj:
                out.append(cause(f"{path}.{name}" if path else name, "Required value", "FieldValueRequired"))
        extra = schema.get("additionalProperties")
        for key, value in obj.items():
            if root and key in ROOT_FIELDS:
                continue
            sub = f"{path}.{key}" if path else key
            if key in props:
                out += validate(value, props[key], sub, root=False)
            elif isinstance(extra, dict):
                out += validate(value, extra, sub, root=False)
    return out


def _bounds(v: float, schema: dict, where: str) -> list[dict]:
    out = []
    if "maximum" in schema:
        top, strict = schema["maximum"], schema.get("exclusiveMaximum")
        if v > top or (strict and v == top):
            word = "less than" if strict else "less than or equal to"
            out.append(cause(where, f"Invalid value: {go_value(v)}: {where} in body should be {word} {top}"))
    if "minimum" in schema:
        low, strict = schema["minimum"], schema.get("exclusiveMinimum")
        if v < low or (strict and v == low):
            word = "greater than" if strict else "greater than or equal to"
            out.append(cause(where, f"Invalid value: {go_value(v)}: {where} in body should be {word} {low}"))
    return out


def structural_problems(schema: Any, path: str) -> list[dict]:
    """Why a CRD's schema is not structural (a type at every level, as apiextensions/v1 requires)."""
    if not isinstance(schema, dict):
        return [cause(path, "Required value: a schema is required", "FieldValueRequired")]
    out = []
    if not schema.get("type") and not _preserves(schema) and not schema.get("x-kubernetes-int-or-string"):
        out.append(cause(f"{path}.type", "Required value: must not be empty for specified object fields",
                         "FieldValueRequired"))
    for key, sub in (schema.get("properties") or {}).items():
        out += structural_problems(sub, f"{path}.properties[{key}]")
    if isinstance(schema.get("items"), dict):
        out += structural_problems(schema["items"], f"{path}.items")
    if isinstance(schema.get("additionalProperties"), dict):
        out += structural_problems(schema["additionalProperties"], f"{path}.additionalProperties")
    if "pattern" in schema:
        try:
            re.compile(schema["pattern"])
        except (re.error, TypeError):
            out.append(cause(f"{path}.pattern", f"Invalid value: {go_value(schema['pattern'])}: must be a valid "
                                                "regular expression"))
    return out
