"""Protobuf request bodies, as kubectl 1.32+ sends them for ``kubectl create deployment`` & co.

The body is ``k8s\\0`` followed by a ``runtime.Unknown`` envelope: field 1 holds the TypeMeta
(apiVersion, kind), field 2 the object's own message bytes. The object is decoded into the same
dict its JSON form would give, using the field numbers of k8s.io/api's ``generated.proto`` listed
in ``k8s_protobuf_fields.txt`` (only the kinds this server serves).
"""

from __future__ import annotations

import base64
import json
import struct
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from . import errors
from .protowire import WireError, fields, read_varint
from .resources import ResourceType

MAGIC = b"k8s\x00"

# kind -> message name in the field table
# Go structs embedded with `json:",inline"` (their fields appear in the parent's JSON)
INLINE = {"localObjectReference", "ephemeralContainerCommon", "persistentVolumeSource", "volumeSource", "handler",
          "volumeStatus"}
INLINE.add("ingressRuleValue")  # networking.v1.IngressRule: its `http` sits beside `host`

KIND_MESSAGES = {
    ("apps/v1", "Deployment"): "apps.v1.Deployment", ("apps/v1", "ReplicaSet"): "apps.v1.ReplicaSet",
    ("v1", "Pod"): "core.v1.Pod", ("v1", "Namespace"): "core.v1.Namespace", ("v1", "ConfigMap"): "core.v1.ConfigMap",
    ("v1", "Secret"): "core.v1.Secret", ("v1", "Service"): "core.v1.Service", ("v1", "Node"): "core.v1.Node",
    ("v1", "Event"): "core.v1.Event", ("v1", "Endpoints"): "core.v1.Endpoints",
    ("v1", "ServiceAccount"): "core.v1.ServiceAccount", ("v1", "PersistentVolume"): "core.v1.PersistentVolume",
    ("v1", "PersistentVolumeClaim"): "core.v1.PersistentVolumeClaim",
    ("coordination.k8s.io/v1", "Lease"): "coordination.v1.Lease",
    ("storage.k8s.io/v1", "StorageClass"): "storage.v1.StorageClass",
    ("storage.k8s.io/v1", "CSIDriver"): "storage.v1.CSIDriver", ("storage.k8s.io/v1", "CSINode"): "storage.v1.CSINode",
    ("apps/v1", "DaemonSet"): "apps.v1.DaemonSet", ("apps/v1", "StatefulSet"): "apps.v1.StatefulSet",
    ("batch/v1", "Job"): "batch.v1.Job", ("batch/v1", "CronJob"): "batch.v1.CronJob",
}
KIND_MESSAGES[("scheduling.k8s.io/v1", "PriorityClass")] = "scheduling.v1.PriorityClass"
KIND_MESSAGES[("v1", "ResourceQuota")] = "core.v1.ResourceQuota"
KIND_MESSAGES[("v1", "LimitRange")] = "core.v1.LimitRange"
KIND_MESSAGES[("networking.k8s.io/v1", "Ingress")] = "networking.v1.Ingress"
KIND_MESSAGES[("networking.k8s.io/v1", "IngressClass")] = "networking.v1.IngressClass"
KIND_MESSAGES[("discovery.k8s.io/v1", "EndpointSlice")] = "discovery.v1.EndpointSlice"
KIND_MESSAGES[("autoscaling/v2", "HorizontalPodAutoscaler")] = "autoscaling.v2.HorizontalPodAutoscaler"

Field = tuple[str, str, bool]

# Pointer fields where 0/false is a real value (kept); other zero ints and false bools are dropped.
KEEP_ZERO = {"replicas", "terminationGracePeriodSeconds", "activeDeadlineSeconds", "runAsUser", "runAsGroup",
             "fsGroup", "revisionHistoryLimit", "progressDeadlineSeconds", "deletionGracePeriodSeconds",
             "priority", "automountServiceAccountToken", "enableServiceLinks", "privileged",
             "allowPrivilegeEscalation", "readOnlyRootFilesystem", "runAsNonRoot", "immutable", "optional",
             "defaultMode", "mode", "hostUsers", "shareProcessNamespace", "setHostnameAsFQDN", "exitCode",
             "restartCount", "ready", "started", "count", "backoffLimit", "parallelism", "completions"}
# the workload controllers' pointer fields (a CronJob keeping no history says 0)
KEEP_ZERO |= {"ttlSecondsAfterFinished", "successfulJobsHistoryLimit", "failedJobsHistoryLimit",
              "startingDeadlineSeconds", "partition"}
KEEP_ZERO.add("value")  # PriorityClass.value: not omitempty


@cache
def schema() -> dict[str, dict[int, Field]]:
    """message name -> field number -> (JSON name, type, repeated), read once from the table."""
    table: dict[str, dict[int, Field]] = {}
    text = (Path(__file__).with_name("k8s_protobuf_fields.txt")).read_text()
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, *specs = line.split(" ")
        msg: dict[int, Field] = {}
        for spec in specs:
            num, json_name, rest = spec.split(":", 2)
            repeated = rest.endswith(":r")
            if repeated:
                rest = rest[:-2]
            msg[int(num)] = (json_name, rest, repeated)
        table[name] = msg
    return table


def _signed(v: int, bits: int) -> int:
    v &= (1 << 64) - 1
    if v >= 1 << 63:
        v -= 1 << 64
    if bits == 32 and not -(1 << 31) <= v < (1 << 31):
        v = ((v + (1 << 31)) % (1 << 32)) - (1 << 31)
    return v


def _time(buf: bytes, micro: bool = False) -> str | None:
    seconds = nanos = 0
    for num, _, val in fields(buf):
        if num == 1:
            seconds = _signed(val, 64)  # type: ignore[arg-type]
        elif num == 2:
            nanos = _signed(val, 32)  # type: ignore[arg-type]
    if seconds == 0 and nanos == 0:
        return None
    dt = datetime.fromtimestamp(seconds, UTC)
    if micro:
        return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1000:06d}Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _special(kind: str, buf: bytes) -> Any:
    if kind == "time":
        return _time(buf)
    if kind == "microtime":
        return _time(buf, micro=True)
    if kind == "quantity":
        return next((v.decode() for n, _, v in fields(buf) if n == 1), "")  # type: ignore[union-attr]
    if kind == "intstr":
        typ, ival, sval = 0, 0, ""
        for n, _, v in fields(buf):
            if n == 1:
                typ = v  # type: ignore[assignment]
            elif n == 2:
                ival = _signed(v, 32)  # type: ignore[arg-type]
            elif n == 3:
                sval = v.decode()  # type: ignore[union-attr]
        return sval if typ == 1 else ival
    if kind in ("raw", "fieldsv1"):
        raw = next((v for n, _, v in fields(buf) if n == 1), b"")
        return json.loads(raw) if raw else {}
    if kind == "duration":
        ns = next((v for n, _, v in fields(buf) if n == 1), 0)
        return f"{_signed(ns, 64) / 1e9:g}s"  # type: ignore[arg-type]
    raise WireError(f"unknown special type {kind}")


_SPECIALS = {"time", "microtime", "quantity", "intstr", "raw", "fieldsv1", "duration"}


def _scalar(typ: str, wt: int, val: int | bytes) -> Any:
    if typ == "string":
        return val.decode() if isinstance(val, bytes) else str(val)
    if typ == "bytes":
        return base64.b64encode(val).decode() if isinstance(val, bytes) else ""
    if typ == "bool":
        return bool(val)
    if typ in ("int32", "int64"):
        return _signed(val, 32 if typ == "int32" else 64)  # type: ignore[arg-type]
    if typ in ("double", "float"):
        import struct
        return struct.unpack("<d" if wt == 1 else "<f", int(val).to_bytes(8 if wt == 1 else 4, "little"))[0]
    raise WireError(f"unsupported scalar {typ}")


def _packed(typ: str, buf: bytes) -> list:
    out, pos = [], 0
    while pos < len(buf):
        v, pos = read_varint(buf, pos)
        out.append(_scalar(typ, 0, v))
    return out


def _value(typ: str, wt: int, val: int | bytes) -> Any:
    if typ in _SPECIALS:
        return _special(typ, val)  # type: ignore[arg-type]
    if "." in typ:
        return decode_message(typ, val)  # type: ignore[arg-type]
    return _scalar(typ, wt, val)


def decode_message(name: str, buf: bytes) -> dict:
    """Decode one protobuf message into the dict its JSON form would give."""
    msg = schema().get(name)
    if msg is None:
        raise WireError(f"no field table for {name}")
    out: dict[str, Any] = {}
    for num, wt, val in fields(buf):
        spec = msg.get(num)
        if spec is None:
            continue  # a field newer than our table: ignore, like an unknown JSON field
        json_name, typ, repeated = spec
        if typ.startswith("map:"):
            vt = typ[4:]
            key, item = "", None
            for n, w, v in fields(val):  # type: ignore[arg-type]
                if n == 1:
                    key = v.decode()  # type: ignore[union-attr]
                elif n == 2:
                    item = _value(vt, w, v)
            if item is None:
                item = "" if vt in ("string", "bytes", "quantity") else {}
            out.setdefault(json_name, {})[key] = item
        elif repeated:
            if wt == 2 and typ in ("int32", "int64", "bool"):
                out.setdefault(json_name, []).extend(_packed(typ, val))  # type: ignore[arg-type]
            else:
                out.setdefault(json_name, []).append(_value(typ, wt, val))
        elif json_name in INLINE and "." in typ:  # an embedded Go struct: its fields sit in the parent
            out.update(decode_message(typ, val))  # type: ignore[arg-type]
        else:
            v = _value(typ, wt, val)
            # Go writes zero-valued non-pointer fields; JSON (omitempty) would have left them out
            if v is None or v == "" or (v in (0, False) and type(v) in (int, bool) and json_name not in KEEP_ZERO):
                continue
            out[json_name] = v
    return out


def decode_request(raw: bytes, rt: ResourceType) -> dict:
    """Decode a ``application/vnd.kubernetes.protobuf`` request body into the object's JSON form."""
    if not raw.startswith(MAGIC):
        raise errors.bad_request("protobuf body does not start with the k8s\\0 magic prefix")
    try:
        api_version = kind = ""
        payload = b""
        for num, _, val in fields(raw[len(MAGIC):]):
            if num == 1:
                for n, _, v in fields(val):  # type: ignore[arg-type]
                    if n == 1:
                        api_version = v.decode()  # type: ignore[union-attr]
                    elif n == 2:
                        kind = v.decode()  # type: ignore[union-attr]
            elif num == 2:
                payload = val  # type: ignore[assignment]
            elif num == 3 and val:
                raise errors.unsupported_media_type(PROTOBUF_CT, f"; contentEncoding {val!r} is not supported")
        name = KIND_MESSAGES.get((api_version, kind))
        if name is None:
            raise errors.unsupported_media_type(PROTOBUF_CT, f"; {kind or '?'} {api_version or '?'} is not "
                                                "decoded from protobuf here: send it as JSON")
        obj = decode_message(name, payload)
    except (WireError, UnicodeDecodeError, ValueError, OverflowError) as exc:
        raise errors.bad_request(f"error decoding protobuf body: {exc}") from None
    except (TypeError, AttributeError, KeyError, IndexError, struct.error):  # a field of the wrong wire type
        raise errors.bad_request("error decoding protobuf body: a field has the wrong wire type for its "
                                 "message (proto: wrong wireType)") from None
    except RecursionError:
        raise errors.bad_request("error decoding protobuf body: messages nested too deeply") from None
    return {"apiVersion": api_version, "kind": kind, **obj}


PROTOBUF_CT = "application/vnd.kubernetes.protobuf"
