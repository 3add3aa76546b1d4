"""Type-checking request bodies against the real API types, and finding unknown fields.

Kubernetes decodes JSON into Go structs: a number where a string belongs is a 400 BadRequest
("cannot unmarshal ..."), and a field the struct does not have is dropped - or, with
``fieldValidation=Strict`` (what ``kubectl apply`` sends), rejected. The same per-message field
table that decodes protobuf bodies (``k8s_protobuf_fields.txt``) describes those structs, so it is
used here as the schema.
"""

from __future__ import annotations

import base64
import re
from datetime import datetime
from functools import cache
from typing import Any

from .protobuf import INLINE, KIND_MESSAGES, schema

_QUANTITY = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?$")
_INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339(text: str) -> bool:
    """Whether Go's ``time.Parse(time.RFC3339, text)`` would take it (what metav1.Time decodes with)."""
    if not _RFC3339.match(text):
        return False
    try:
        datetime.fromisoformat(text[:19])
    except ValueError:
        return False
    return True


_GO_TYPES = {"string": "string", "int32": "int32", "int64": "int64", "bool": "bool", "bytes": "[]uint8",
             "double": "float64", "float": "float32"}


@cache
def json_fields(message: str) -> dict[str, tuple[str, bool]]:
    """JSON field name -> (type, repeated) for one message, inline members flattened."""
    out: dict[str, tuple[str, bool]] = {}
    for json_name, typ, repeated in schema().get(message, {}).values():
        if json_name in INLINE and "." in typ:
            out.update(json_fields(typ))
        else:
            out[json_name] = (typ, repeated)
    return out


def _json_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


class Checker:
    """Walks a JSON object against the message table, collecting type errors and unknown fields."""
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.unknown: list[str] = []

    def mismatch(self, v: Any, struct: str, path: str, go_type: str) -> None:
        self.errors.append(f"json: cannot unmarshal {_json_kind(v)} into Go struct field {struct}.{path} "
                           f"of type {go_type}")

    def value(self, typ: str, v: Any, struct: str, path: str) -> None:
        if v is None:
            return
        if typ == "string" or typ == "duration":
            if not isinstance(v, str):
                self.mismatch(v, struct, path, "string")
        elif typ in ("int32", "int64"):
            if isinstance(v, bool) or not (isinstance(v, int) or (isinstance(v, float) and v.is_integer())):
                self.mismatch(v, struct, path, typ)
            elif not _INT_RANGE[typ][0] <= v <= _INT_RANGE[typ][1]:  # Go: the number does not fit the field
                self.errors.append(f"json: cannot unmarshal number {int(v)} into Go struct field {struct}.{path} "
                                   f"of type {typ}")
        elif typ in ("double", "float"):
            if isinstance(v, bool) or not isinstance(v, int | float):
                self.mismatch(v, struct, path, _GO_TYPES[typ])
        elif typ == "bool":
            if not isinstance(v, bool):
                self.mismatch(v, struct, path, "bool")
        elif typ == "bytes":
            if not isinstance(v, str):
                self.mismatch(v, struct, path, "[]uint8")
            else:
                try:
                    base64.b64decode(v, validate=True)
                except ValueError:
                    self.errors.append(f"illegal base64 data in {struct}.{path}")
        elif typ == "quantity":
            if isinstance(v, bool) or not isinstance(v, str | int | float):
                self.mismatch(v, struct, path, "resource.Quantity")
            elif isinstance(v, str) and not _QUANTITY.match(v.strip()):
                self.errors.append(f"quantities must match the regular expression "
                                   f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' ({path}: {v!r})")
        elif typ == "intstr":
            if isinstance(v, bool) or not isinstance(v, str | int):
                self.mismatch(v, struct, path, "intstr.IntOrString")
        elif typ in ("time", "microtime"):
            if not isinstance(v, str):
                self.mismatch(v, struct, path, "v1.Time")
            elif v and not _rfc3339(v):
                self.errors.append(f'parsing time "{v[:64]}" as "2006-01-02T15:04:05Z07:00": cannot parse it '
                                   f"as RFC 3339 ({path})")
        elif typ in ("raw", "fieldsv1"):
            return
        elif typ.startswith("map:"):
            if not isinstance(v, dict):
                self.mismatch(v, struct, path, f"map[string]{_GO_TYPES.get(typ[4:], typ[4:])}")
                return
            for k, item in v.items():
                self.value(typ[4:], item, struct, f"{path}[{k}]")
        elif "." in typ:
            if not isinstance(v, dict):
                self.mismatch(v, struct, path, "v1." + typ.rsplit(".", 1)[-1])
                return
            self.message(typ, v, path)

    def message(self, message: str, obj: dict, path: str, top: bool = False) -> None:
        fields = json_fields(message)
        struct = message.rsplit(".", 1)[-1]
        for k, v in obj.items():
            spec = fields.get(k)
            sub = f"{path}.{k}" if path else k
            if spec is None:
                if not (top and k in ("apiVersion", "kind")):
                    self.unknown.append(sub)
                continue
            typ, repeated = spec
            if repeated:
                if v is None:
                    continue
                if not isinstance(v, list):
                    self.mismatch(v, struct, sub, f"[]{_GO_TYPES.get(typ, 'v1.' + typ.rsplit('.', 1)[-1])}")
                    continue
                for i, item in enumerate(v):
                    self.value(typ, item, struct, f"{sub}[{i}]")
            else:
                self.value(typ, v, struct, sub)


def check(api_version: str, kind: str, obj: dict) -> tuple[list[str], list[str]]:
    """(type errors, unknown field paths) of ``obj`` as an object of this kind."""
    message = KIND_MESSAGES.get((api_version, kind))
    c = Checker()
    if message is not None:
        c.message(message, obj, "", top=True)
    return c.errors, c.unknown


def drop_unknown(obj: dict, unknown: list[str]) -> None:
    """Remove unknown fields (what decoding into Go structs does), for paths without list indexes."""
    for path in unknown:
        if "[" in path:
            continue
        parts = path.split(".")
        cur: Any = obj
        for p in parts[:-1]:
            cur = cur.get(p) if isinstance(cur, dict) else None
        if isinstance(cur, dict):
            cur.pop(parts[-1], None)
