"""LimitRange objects and the LimitRanger admission step: default requests and limits, then minima,
maxima and limit/request ratios per Container, per Pod and per PersistentVolumeClaim, with
kube-apiserver's messages."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from labkit.client import quantity
from labkit.controlplane.quota.amounts import fmt
from labkit.controlplane.quota.usage import pod_resources

from .codec import decode
from .errors import StatusError, cause

PREFIX = "/registry/limitranges/"
TYPES = ("Container", "Pod", "PersistentVolumeClaim")


def default_limitrange(lr: dict) -> None:
    """As core/v1's defaults: default limit from max, default request from the default limit, then from min."""
    for item in (lr.setdefault("spec", {}).get("limits") or []):
        if not isinstance(item, dict) or item.get("type") != "Container":
            continue
        default = item.setdefault("default", {})
        request = item.setdefault("defaultRequest", {})
        for k, v in (item.get("max") or {}).items():
            default.setdefault(k, v)
        for k, v in default.items():
            request.setdefault(k, v)
        for k, v in (item.get("min") or {}).items():
            request.setdefault(k, v)


def validate_limitrange(lr: dict, old: dict | None) -> list[dict]:
    out = []
    for i, item in enumerate((lr.get("spec") or {}).get("limits") or []):
        where = f"spec.limits[{i}]"
        if item.get("type") not in TYPES:
            out.append(cause(f"{where}.type", f'Unsupported value: "{item.get("type")}"', "FieldValueNotSupported"))
            continue
        for part in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            for k, v in (item.get(part) or {}).items():
                try:
                    quantity.parse(v)
                except ValueError:
                    out.append(cause(f"{where}.{part}[{k}]", f'Invalid value: "{v}": not a quantity'))
        if item.get("type") != "Container" and (item.get("default") or item.get("defaultRequest")):
            out.append(cause(f"{where}.default", "Forbidden: may not be specified when `type` is not 'Container'",
                             "FieldValueForbidden"))
        lo, hi = item.get("min") or {}, item.get("max") or {}
        for k in set(lo) & set(hi):
            try:
                if quantity.parse(lo[k]) > quantity.parse(hi[k]):
                    out.append(cause(f"{where}.min[{k}]", f'Invalid value: "{lo[k]}": min value {lo[k]} is greater '
                                                          f"than max value {hi[k]}"))
            except ValueError:
                pass
    return out


def _ranges(store: Any, namespace: str) -> list[dict]:
    kvs, _ = store.list(f"{PREFIX}{namespace}/")
    return [decode(kv.value) for kv in sorted(kvs, key=lambda kv: kv.key)]


def _check(errs: list[str], kind: str, item: dict, requests: dict[str, Decimal], limits: dict[str, Decimal]) -> None:
    """One message per broken constraint (the first thing wrong with it), as the LimitRanger words them."""
    for k, v in (item.get("min") or {}).items():
        lo = quantity.parse(v)
        if k not in requests:
            errs.append(f"minimum {k} usage per {kind} is {v}.  No request is specified")
        elif requests[k] < lo:
            errs.append(f"minimum {k} usage per {kind} is {v}, but request is {fmt(k, requests[k])}")
        elif k in limits and limits[k] < lo:
            errs.append(f"minimum {k} usage per {kind} is {v}, but limit is {fmt(k, limits[k])}")
    for k, v in (item.get("max") or {}).items():
        hi = quantity.parse(v)
        if k not in limits:
            errs.append(f"maximum {k} usage per {kind} is {v}.  No limit is specified")
        elif limits[k] > hi:
            errs.append(f"maximum {k} usage per {kind} is {v}, but limit is {fmt(k, limits[k])}")
        elif k in requests and requests[k] > hi:
            errs.append(f"maximum {k} usage per {kind} is {v}, but request is {fmt(k, requests[k])}")
    for k, v in (item.get("maxLimitRequestRatio") or {}).items():
        if k in limits and requests.get(k):
            ratio = limits[k] / requests[k]
            if ratio > quantity.parse(v):
                errs.append(f"{k} max limit to request ratio per {kind} is {v}, but provided ratio is {ratio:f}")


def _forbidden(resource: str, name: str, errs: list[str]) -> StatusError:
    why = errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"
    return StatusError(403, "Forbidden", f'{resource} "{name}" is forbidden: {why}', {"name": name, "kind": resource})


def default_pod(store: Any, namespace: str | None, pod: dict) -> None:
    """The mutating half: fill in each container's default requests and limits from the ranges."""
    if not namespace:
        return
    spec = pod.setdefault("spec", {})
    containers = [c for c in (*(spec.get("initContainers") or []), *(spec.get("containers") or []))
                  if isinstance(c, dict)]
    for lr in _ranges(store, namespace):
        for item in (lr.get("spec") or {}).get("limits") or []:
            if item.get("type") != "Container":
                continue
            for c in containers:
                res = c.setdefault("resources", {})
                if not isinstance(res, dict):
                    continue
                for k, v in (item.get("defaultRequest") or {}).items():
                    res.setdefault("requests", {}).setdefault(k, v)
                for k, v in (item.get("default") or {}).items():
                    res.setdefault("limits", {}).setdefault(k, v)


def check_pod(store: Any, namespace: str | None, pod: dict) -> None:
    """The validating half (after the pod passed validation, so its quantities parse): refuse a pod
    outside the ranges."""
    if not namespace:
        return
    ranges = _ranges(store, namespace)
    if not ranges:
        return
    spec = pod.get("spec") or {}
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    errs: list[str] = []
    for lr in ranges:
        for item in (lr.get("spec") or {}).get("limits") or []:
            if item.get("type") == "Container":
                for c in containers:
                    res = c.get("resources") or {}
                    _check(errs, "Container", item, {k: quantity.parse(v) for k, v in (res.get("requests") or {}).items()},
                           {k: quantity.parse(v) for k, v in (res.get("limits") or {}).items()})
            elif item.get("type") == "Pod":
                _check(errs, "Pod", item, pod_resources(pod, "requests"), pod_resources(pod, "limits"))
    if errs:
        raise _forbidden("pods", (pod.get("metadata") or {}).get("name", ""), errs)


def check_claim(store: Any, namespace: str | None, claim: dict) -> None:
    """A claim's storage request must lie within the PersistentVolumeClaim ranges."""
    if not namespace:
        return
    errs: list[str] = []
    req = (((claim.get("spec") or {}).get("resources") or {}).get("requests") or {})
    requests = {k: quantity.parse(v) for k, v in req.items()}
    for lr in _ranges(store, namespace):
        for item in (lr.get("spec") or {}).get("limits") or []:
            if item.get("type") == "PersistentVolumeClaim":
                for k, v in (item.get("min") or {}).items():
                    if k in requests and requests[k] < quantity.parse(v):
                        errs.append(f"minimum {k} usage per PersistentVolumeClaim is {v}, but request is "
                                    f"{fmt(k, requests[k])}")
                for k, v in (item.get("max") or {}).items():
                    if k in requests and requests[k] > quantity.parse(v):
                        errs.append(f"maximum {k} usage per PersistentVolumeClaim is {v}, but request is "
                                    f"{fmt(k, requests[k])}")
    if errs:
        raise _forbidden("persistentvolumeclaims", (claim.get("metadata") or {}).get("name", ""), errs)
