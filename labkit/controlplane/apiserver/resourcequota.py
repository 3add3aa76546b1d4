"""ResourceQuota objects and the ResourceQuota admission step.

A new object is charged to every quota in its namespace that selects it, before it is stored:
admission reads the quota's ``status.used``, refuses the object with kube-apiserver's
"exceeded quota" message if it would go over ``status.hard``, and otherwise writes the new ``used``
back with a compare-and-swap on the quota's revision, so two creates racing for the last unit
cannot both win. The quota controller (``labkit.controlplane.controllers.resourcequota``) fills
``status.hard`` when a quota is made, and recounts ``used`` from the objects that exist, which gives
back what deleted objects (or a create that failed after it was charged) held.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from labkit.client import quantity
from labkit.controlplane.quota import amounts, scopes, usage
from labkit.controlplane.store import Conflict

from .codec import decode, encode
from .errors import StatusError, cause

PREFIX = "/registry/resourcequotas/"
SCOPE_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def default_resourcequota(q: dict) -> None:
    q.setdefault("spec", {}).setdefault("hard", {})


def validate_resourcequota(q: dict, old: dict | None) -> list[dict]:
    out = []
    spec = q.get("spec") or {}
    for name, v in (spec.get("hard") or {}).items():
        try:
            if quantity.parse(v) < 0:
                out.append(cause(f"spec.hard[{name}]", f"Invalid value: \"{v}\": must be greater than or equal to 0"))
        except ValueError:
            out.append(cause(f"spec.hard[{name}]", f"Invalid value: \"{v}\": quantities must match the regular "
                                                   "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"))
    for i, s in enumerate(spec.get("scopes") or []):
        if s not in scopes.POD_SCOPES:
            out.append(cause(f"spec.scopes[{i}]", f'Unsupported value: "{s}"', "FieldValueNotSupported"))
    for i, e in enumerate((spec.get("scopeSelector") or {}).get("matchExpressions") or []):
        where = f"spec.scopeSelector.matchExpressions[{i}]"
        if e.get("scopeName") not in scopes.POD_SCOPES:
            out.append(cause(f"{where}.scopeName", f'Unsupported value: "{e.get("scopeName")}"', "FieldValueNotSupported"))
        if e.get("operator") not in SCOPE_OPERATORS:
            out.append(cause(f"{where}.operator", f'Unsupported value: "{e.get("operator")}"', "FieldValueNotSupported"))
        elif e.get("operator") in ("In", "NotIn") and not e.get("values"):
            out.append(cause(f"{where}.values", "Required value: must be at least one value when `operator` is "
                                                "'In' or 'NotIn' for scope selector", "FieldValueRequired"))
    return out


def _forbidden(resource: str, name: str, why: str) -> StatusError:
    return StatusError(403, "Forbidden", f'{resource} "{name}" is forbidden: {why}', {"name": name, "kind": resource})


def admit(store: Any, plural: str, group: str, namespace: str | None, obj: dict, dry_run: bool = False) -> None:
    """Charge a new object to the quotas of its namespace, or refuse it (403) as kube-apiserver does."""
    if not namespace:
        return
    kvs, _ = store.list(f"{PREFIX}{namespace}/")
    if not kvs:
        return
    resource = f"{plural}.{group}" if group else plural
    name = (obj.get("metadata") or {}).get("name", "")
    delta = usage.usage(plural, group, obj)
    for kv in sorted(kvs, key=lambda kv: kv.key):
        for _attempt in range(20):
            quota = decode(kv.value)
            if not scopes.selects(quota, plural, group, obj):
                break
            status = quota.get("status") or {}
            qname = quota["metadata"]["name"]
            tracked = set((quota.get("spec") or {}).get("hard") or {})
            missing = usage.missing_for(obj, tracked) if plural == "pods" and not group else []
            interesting = sorted(tracked & set(delta))
            if not interesting and not missing:
                break  # this quota counts nothing this object uses
            if any(r not in (status.get("hard") or {}) or r not in (status.get("used") or {}) for r in interesting):
                # the quota controller has not counted it yet (kube-apiserver refuses the same way)
                raise _forbidden(resource, name, f"status unknown for quota: {qname}, resources: {','.join(interesting)}")
            if missing:
                raise _forbidden(resource, name, f"failed quota: {qname}: must specify {'; '.join(missing)}")
            hard = amounts.parse_all(status["hard"])
            wanted = {r: v for r, v in delta.items() if r in hard}
            if not wanted:
                break
            used = amounts.parse_all(status.get("used"))
            after = amounts.add({r: used.get(r, Decimal(0)) for r in wanted}, wanted)
            over = sorted(r for r in wanted if after[r] > hard[r])
            if over:
                asked = amounts.pretty({r: wanted[r] for r in over})
                had = amounts.pretty({r: used.get(r, Decimal(0)) for r in over})
                limit = amounts.pretty({r: hard[r] for r in over})
                raise _forbidden(resource, name, f"exceeded quota: {qname}, requested: {asked}, used: {had}, "
                                                 f"limited: {limit}")
            if dry_run:
                break
            status["used"] = {**(status.get("used") or {}), **amounts.fmt_all(after)}
            quota["status"] = status
            try:
                store.update(kv.key, encode(quota), expected_mod_revision=kv.mod_revision)
                break
            except Conflict:
                fresh = store.get(kv.key)
                if fresh is None:
                    break
                kv = fresh
        else:
            raise StatusError(409, "Conflict", f'Operation cannot be fulfilled on resourcequotas "{kv.key.rsplit("/", 1)[1]}": '
                              "the object has been modified; please apply your changes to the latest version and try again",
                              {"name": kv.key.rsplit("/", 1)[1], "kind": "resourcequotas"})
