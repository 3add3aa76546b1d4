"""JSON and YAML request bodies decoded within bounds: nesting depth, aliases, and JSON's own values.

A hostile body must cost a 400, never a 500 or the server's memory. Go's decoders (what
kube-apiserver uses) stop at 10,000 levels of nesting and refuse YAML that aliases its way to a
huge document; Python's recursive decoders stop near 1,000 levels with a RecursionError, and
PyYAML expands aliases without limit when the result is written out. So every decoded body is
walked once, without recursion, and refused when it is nested deeper than :data:`MAX_DEPTH`,
when aliases make it much bigger than its text, or when it holds what JSON cannot carry
(NaN, infinities, YAML timestamps and non-string keys are turned into what Go's YAML-to-JSON
conversion makes of them).
"""

from __future__ import annotations

import datetime
import json
import math
from typing import Any

import yaml

from . import errors

MAX_DEPTH = 100  # Kubernetes objects nest about 20 levels deep; CRD schemas a few dozen
NODES_PER_BYTE = 2  # a body without aliases decodes to fewer values than it has bytes


def _deep() -> errors.StatusError:
    return errors.bad_request(f"the request body is nested more than {MAX_DEPTH} levels deep (objects and "
                              "arrays inside each other); flatten it, or send the data in pieces")


def _no_constant(name: str) -> float:
    raise ValueError(f"invalid character {name[0]!r} looking for beginning of value")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text} is out of range for a float64")
    return value


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > 308:  # beyond float64, where Go's decoder gives up on a number
        raise ValueError(f"cannot unmarshal number {text[:20]}... into Go value of type float64")
    return int(text)


def decode_json(raw: bytes, what: str = "request body") -> Any:
    """``raw`` as JSON, like Go's decoder: no NaN or Infinity, numbers within float64, depth bounded."""
    try:
        obj = json.loads(raw, parse_constant=_no_constant, parse_float=_finite, parse_int=_integer)
    except RecursionError:
        raise _deep() from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.bad_request(f"error decoding {what} as JSON: {exc}") from None
    return _bounded(obj, len(raw))


class _Loader(yaml.SafeLoader):
    """SafeLoader without timestamps: Go's YAML-to-JSON keeps a date as the string it was written as."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def decode_yaml(raw: bytes, what: str = "request body") -> Any:
    """``raw`` as YAML, then made JSON-compatible and bounded like :func:`decode_json`."""
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _flow_depth(raw) > MAX_DEPTH:
        raise _deep()  # found before PyYAML spends seconds on it
    try:
        obj = yaml.load(raw, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise _deep() from None
    except (yaml.YAMLError, UnicodeDecodeError, ValueError) as exc:
        raise errors.bad_request(f"error decoding {what} as YAML: {exc}") from None
    return _bounded(obj, len(raw), yaml_values=True)


_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _flow_depth(raw: bytes) -> int:
    """How deep YAML flow collections (``[`` and ``{``) nest, counting brackets alone (quick, and
    at worst an overestimate when quoted strings hold unbalanced brackets)."""
    depth = deepest = 0
    for b in raw.translate(None, _NOT_BRACKETS):
        if b in b"[{":
            depth += 1
            if depth > deepest:
                deepest = depth
        else:
            depth -= 1
    return deepest


def _scalar(v: Any, yaml_values: bool) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        raise errors.bad_request(f"error decoding request body: {v} cannot be represented in JSON")
    if yaml_values and isinstance(v, datetime.date | datetime.datetime):
        return v.isoformat()
    if yaml_values and isinstance(v, bytes):  # !!binary: JSON carries it as base64, as Go does
        import base64
        return base64.b64encode(v).decode()
    if yaml_values and v is not None and not isinstance(v, str | int | float | bool):
        raise errors.bad_request(f"error decoding request body: a {type(v).__name__} has no JSON form")
    return v


def _key(k: Any) -> str:
    """A YAML mapping key as Go's YAML-to-JSON writes it: the text of the key."""
    if isinstance(k, str):
        return k
    if isinstance(k, bool):
        return "true" if k else "false"
    if k is None:
        return "null"
    if isinstance(k, int | float):
        return str(k)
    raise errors.bad_request(f"error decoding request body: a mapping key must be a scalar, not {k!r:.40}")


def _bounded(obj: Any, size: int, yaml_values: bool = False) -> Any:
    """Check depth and size without recursion; for YAML, return a JSON-compatible copy."""
    budget = NODES_PER_BYTE * size + 64
    top = [obj]
    stack: list[tuple[Any, int, Any, Any]] = [(obj, 1, top, 0)]  # value, depth, parent, slot in parent
    while stack:
        value, depth, parent, slot = stack.pop()
        budget -= 1
        if budget < 0:
            raise errors.bad_request("error decoding request body: document contains excessive aliasing")
        if isinstance(value, dict):
            if depth > MAX_DEPTH:
                raise _deep()
            if yaml_values:
                copy = {_key(k): v for k, v in value.items()}
                parent[slot] = copy
                value = copy
            for k, v in value.items():
                stack.append((v, depth + 1, value, k))
        elif isinstance(value, list):
            if depth > MAX_DEPTH:
                raise _deep()
            if yaml_values:
                copy = list(value)
                parent[slot] = copy
                value = copy
            for i, v in enumerate(value):
                stack.append((v, depth + 1, value, i))
        else:
            fixed = _scalar(value, yaml_values)
            if fixed is not value:
                parent[slot] = fixed
    return top[0]
