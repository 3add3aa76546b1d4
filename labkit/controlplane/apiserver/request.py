"""One API request: what it asks for (resource, namespace, name, subresource, query) and its body.

Bodies are JSON (also with no Content-Type), YAML or Kubernetes protobuf, at most 3 MiB. They are
checked the way decoding into Go structs checks them: wrong JSON types are a 400, and unknown
fields follow ``fieldValidation``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web, web_protocol

from . import errors, schema
from .codec import dumps
from .decoding import decode_json, decode_yaml
from .errors import StatusError
from .patch import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH
from .resources import ResourceType
from .selectors import FieldSelector, LabelSelector

BODY_LIMIT = 3 * 1024 * 1024
JSON = "application/json"
TABLE_CT = "application/json;as=Table;v=v1;g=meta.k8s.io"
PROTOBUF = "application/vnd.kubernetes.protobuf"


class Request:
    """What one API request is about, parsed from the path and query."""

    __slots__ = ("rt", "ns", "name", "sub", "query", "http")

    def __init__(self, rt: ResourceType, ns: str | None, name: str | None, sub: str | None, http: web.Request):
        self.rt, self.ns, self.name, self.sub, self.http = rt, ns, name, sub, http
        self.query = http.query

    @property
    def dry_run(self) -> bool:
        return "All" in self.query.getall("dryRun", [])

    def wants_table(self) -> bool:
        accept = self.http.headers.get("Accept", "")
        return "as=Table" in accept and "g=meta.k8s.io" in accept

    def selectors(self) -> tuple[LabelSelector, FieldSelector]:
        return (LabelSelector.parse(self.query.get("labelSelector")),
                FieldSelector.parse(self.query.get("fieldSelector"), self.rt.field_getters))

    def int_param(self, name: str) -> int | None:
        """An integer query parameter as Go reads it into an int64 (``strconv.ParseInt``)."""
        raw = self.query.get(name)
        if raw in (None, ""):
            return None
        if not _INT.fullmatch(raw):
            raise errors.bad_request(f"invalid value for {name}: {raw!r} is not an integer "
                                     f'(strconv.ParseInt: parsing "{raw}": invalid syntax)')
        if len(raw) > 25 or not -2**63 <= int(raw) < 2**63:
            raise errors.bad_request(f"invalid value for {name}: {raw!r} is out of range "
                                     f'(strconv.ParseInt: parsing "{raw}": value out of range)')
        return int(raw)

    def resource_version(self) -> int | None:
        """``resourceVersion`` as a revision: None when unset or "0" (any), else a uint64.

        Anything else is a 400, worded as kube-apiserver's etcd3 store words it.
        """
        raw = self.query.get("resourceVersion")
        if raw in (None, "", "0"):
            return None
        return parse_resource_version(raw)


_INT = re.compile(r"[+-]?[0-9]+")
_UINT = re.compile(r"[0-9]+")


def parse_resource_version(raw: str) -> int:
    """A resourceVersion string as Go's ``strconv.ParseUint(rv, 10, 64)`` reads it, or a 400."""
    why = "invalid syntax"
    if _UINT.fullmatch(raw):
        if len(raw) <= 25 and int(raw) < 2**64:
            return int(raw)
        why = "value out of range"
    raise errors.bad_request(f'invalid resource version: resourceVersion: Invalid value: "{raw}": '
                             f'strconv.ParseUint: parsing "{raw}": {why}')


def response(body: bytes, status: int = 200, content_type: str = JSON, headers: dict | None = None) -> web.Response:
    """A reply from bytes that are already JSON (objects leave the store that way)."""
    resp = web.Response(body=body, status=status, headers=headers)
    resp.headers["Content-Type"] = content_type
    return resp


def status_response(err: StatusError) -> web.Response:
    """The metav1.Status reply kubectl and the Python client turn into their error messages."""
    return response(dumps(err.status()), err.code)


async def read_body(req: Request, allow_patch: bool = False) -> tuple[Any, str]:
    """The request body decoded by Content-Type (JSON by default), at most 3 MiB."""
    http = req.http
    if http.content_length is not None and http.content_length > BODY_LIMIT:
        raise errors.too_large(BODY_LIMIT)
    chunks, size = [], 0
    while True:
        try:
            chunk = await http.content.read(65536)
        except web_protocol.RequestPayloadError as exc:  # a broken chunked body, say
            raise errors.bad_request(f"error reading the request body: {exc}") from None
        if not chunk:
            break
        size += len(chunk)
        if size > BODY_LIMIT:
            raise errors.too_large(BODY_LIMIT)
        chunks.append(chunk)
    raw = b"".join(chunks)
    ct = (http.headers.get("Content-Type") or JSON).split(";")[0].strip().lower()
    if ct in ("", JSON, "*/*") or (allow_patch and ct in (MERGE_PATCH, STRATEGIC_PATCH, JSON_PATCH)):
        return decode_json(raw), ct
    if ct in ("application/yaml", "application/x-yaml", "text/yaml"):
        return decode_yaml(raw), ct
    if ct == PROTOBUF and not allow_patch:
        from .protobuf import decode_request
        return decode_request(raw, req.rt), ct
    if allow_patch and ct == APPLY_PATCH:  # server-side apply: YAML (or JSON, which is YAML too)
        return decode_yaml(raw, "apply patch"), ct
    raise errors.unsupported_media_type(ct)


def field_checks(req: Request, obj: Any) -> dict:
    """Decode-time checks: wrong JSON types are a 400, like decoding into Go structs.

    Unknown fields follow ``fieldValidation``: Strict rejects them, Warn (the default) answers
    with a Warning header, Ignore ignores them; they are dropped from the object either way.
    """
    if not isinstance(obj, dict):
        raise errors.bad_request("the request body must be a JSON or YAML object")
    rt = req.rt
    strip_nulls(obj)
    if rt.custom:  # a custom resource: its schema prunes what it does not declare
        from .customresources import prune
        type_errors, unknown = [], prune(rt, obj)
    else:
        type_errors, unknown = schema.check(rt.group_version, rt.kind, obj)
    if type_errors:
        raise errors.bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                                 + "; ".join(type_errors[:5]))
    mode = req.query.get("fieldValidation", "Warn")
    if mode not in ("Strict", "Warn", "Ignore"):
        raise errors.bad_request(f'fieldValidation must be one of "Ignore", "Warn" or "Strict", not "{mode}"')
    if not unknown:
        return {}
    schema.drop_unknown(obj, unknown)
    if mode == "Strict":
        raise errors.bad_request("strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown))
    if mode == "Ignore":
        return {}
    # a header carries ASCII text only: a field name with control or non-ASCII characters is escaped
    return {"Warning": ", ".join(f'299 - "unknown field \\"{json.dumps(u)[1:-1]}\\""' for u in unknown)}


def strip_nulls(obj: Any) -> None:
    """JSON ``null`` decodes to "not set" in Go; drop such keys so later code sees them as absent."""
    if isinstance(obj, dict):
        for k in [k for k, v in obj.items() if v is None]:
            del obj[k]
        for v in obj.values():
            strip_nulls(v)
    elif isinstance(obj, list):
        for v in obj:
            strip_nulls(v)
