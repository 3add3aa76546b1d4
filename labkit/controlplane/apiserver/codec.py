"""How objects are laid out in the store, and how ``resourceVersion`` is put back on the way out.

Like kube-apiserver, objects are stored without ``metadata.resourceVersion``: the store's mod
revision *is* the resource version. Values are compact JSON that starts with apiVersion, kind and
metadata, so the version can be spliced into the bytes of a reply without decoding and
re-encoding the object. That keeps list, get and watch fan-out cheap.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

_META = b'"metadata":{'


_last_second: list = [0, ""]


def now_rfc3339() -> str:
    """The current time at one-second precision, as Kubernetes timestamps are (formatted once a second)."""
    sec = int(time.time())
    if _last_second[0] != sec:
        _last_second[:] = [sec, datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")]
    return _last_second[1]


def encode(obj: dict) -> bytes:
    """Encode an object for the store (its resourceVersion is dropped)."""
    meta = dict(obj.get("metadata") or {})
    meta.pop("resourceVersion", None)
    ordered: dict[str, Any] = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": meta}
    for k, v in obj.items():
        if k not in ordered:
            ordered[k] = v
    return json.dumps(ordered, separators=(",", ":")).encode()


def with_rv(value: bytes, rev: int) -> bytes:
    """The stored bytes with ``metadata.resourceVersion`` set to ``rev``, without decoding."""
    i = value.find(_META, 0, 300)
    if i < 0 or not value.startswith(b'{"apiVersion"'):
        return json.dumps(decode(value, rev), separators=(",", ":")).encode()
    j = i + len(_META)
    sep = b"" if value[j:j + 1] == b"}" else b","
    return b"".join((value[:j], b'"resourceVersion":"', str(rev).encode(), b'"', sep, value[j:]))


def decode(value: bytes, rev: int | None = None) -> dict:
    """A fresh (mutable) object from stored bytes, with resourceVersion when ``rev`` is given."""
    obj = json.loads(value)
    if rev is not None:
        obj.setdefault("metadata", {})["resourceVersion"] = str(rev)
    return obj


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
