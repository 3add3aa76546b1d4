"""CustomResourceDefinition objects themselves: their defaults, their validation, their status.

A CRD names a new kind (group, versions, scope, plural/singular/shortNames/categories) and gives each
version a structural schema. kube-apiserver's apiextensions controllers then accept the names and
mark the definition Established; here that happens as the CRD is written, so its kind is served as
soon as ``kubectl apply`` returns (``kubectl wait --for condition=established`` passes at once).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .crdschema import go_value, structural_problems
from .errors import cause
from .validation import DNS1123_LABEL, DNS1123_SUBDOMAIN


def storage_version(crd: dict) -> str | None:
    """The one version marked ``storage: true``."""
    for v in (crd.get("spec") or {}).get("versions") or []:
        if isinstance(v, dict) and v.get("storage"):
            return v.get("name")
    return None


def default_crd(crd: dict) -> None:
    """Names' defaults, and the status the apiextensions controllers would write."""
    spec = crd.setdefault("spec", {})
    names = spec.get("names")
    if isinstance(names, dict) and isinstance(names.get("kind"), str):
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", names["kind"] + "List")
    spec.setdefault("conversion", {"strategy": "None"})
    for v in spec.get("versions") or []:
        if isinstance(v, dict):
            v.setdefault("served", True)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    old = crd.get("status") if isinstance(crd.get("status"), dict) else {}
    stored = list(old.get("storedVersions") or [])
    if storage_version(crd) and storage_version(crd) not in stored:
        stored.append(storage_version(crd))
    since = {c.get("type"): c.get("lastTransitionTime") for c in old.get("conditions") or [] if isinstance(c, dict)}
    crd["status"] = {
        "acceptedNames": dict(names) if isinstance(names, dict) else {},
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": since.get("NamesAccepted") or now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": since.get("Established") or now},
        ],
        "storedVersions": stored,
    }


def validate_crd(crd: dict, old: dict | None) -> list[dict]:
    """The checks of apiextensions' validation that a learner's CRD can fail."""
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return [cause("spec", "Required value", "FieldValueRequired")]
    out: list[dict] = []
    group, names = spec.get("group"), spec.get("names")
    if not isinstance(group, str) or not group:
        out.append(cause("spec.group", "Required value", "FieldValueRequired"))
    elif "." not in group or not DNS1123_SUBDOMAIN.match(group):
        out.append(cause("spec.group", f"Invalid value: {go_value(group)}: should be a domain with at least one dot"))
    if not isinstance(names, dict):
        out.append(cause("spec.names", "Required value", "FieldValueRequired"))
        names = {}
    for key in ("plural", "kind"):
        if not names.get(key):
            out.append(cause(f"spec.names.{key}", "Required value", "FieldValueRequired"))
    for key in ("plural", "singular"):
        value = names.get(key)
        if value and (not isinstance(value, str) or not DNS1123_LABEL.match(value)):
            out.append(cause(f"spec.names.{key}", f"Invalid value: {go_value(value)}: a lowercase RFC 1123 label "
                                                  "must consist of lower case alphanumeric characters or '-'"))
    for i, short in enumerate(names.get("shortNames") or []):
        if not isinstance(short, str) or not DNS1123_LABEL.match(short):
            out.append(cause(f"spec.names.shortNames[{i}]", f"Invalid value: {go_value(short)}: a lowercase "
                                                            "RFC 1123 label must consist of lower case alphanumeric "
                                                            "characters or '-'"))
    name = (crd.get("metadata") or {}).get("name")
    if names.get("plural") and isinstance(group, str) and name != f"{names['plural']}.{group}":
        out.append(cause("metadata.name", f"Invalid value: {go_value(name)}: must be "
                                          'spec.names.plural+"."+spec.group'))
    scope = spec.get("scope")
    if scope not in ("Namespaced", "Cluster"):
        out.append(cause("spec.scope", f'Unsupported value: {go_value(scope)}: supported values: "Cluster", '
                                       '"Namespaced"', "FieldValueNotSupported") if scope else
                   cause("spec.scope", "Required value", "FieldValueRequired"))
    out += _versions(spec.get("versions"))
    if old is not None:
        old_spec = old.get("spec") or {}
        for key in ("scope", "group"):
            if old_spec.get(key) != spec.get(key):
                out.append(cause(f"spec.{key}", f"Invalid value: {go_value(spec.get(key))}: field is immutable"))
    return out


def _versions(versions: Any) -> list[dict]:
    if not isinstance(versions, list) or not versions:
        return [cause("spec.versions", "Invalid value: null: must have exactly one version marked as storage "
                                       "version")]
    out: list[dict] = []
    if sum(1 for v in versions if isinstance(v, dict) and v.get("storage")) != 1:
        out.append(cause("spec.versions", "Invalid value: []apiextensions.CustomResourceDefinitionVersion{...}: "
                                          "must have exactly one version marked as storage version"))
    for i, v in enumerate(versions):
        path = f"spec.versions[{i}]"
        if not isinstance(v, dict):
            out.append(cause(path, "Invalid value: must be an object"))
            continue
        if not isinstance(v.get("name"), str) or not DNS1123_LABEL.match(v["name"]):
            out.append(cause(f"{path}.name", f"Invalid value: {go_value(v.get('name'))}: a DNS-1035 label must "
                                             "consist of lower case alphanumeric characters or '-'"))
        schema = (v.get("schema") or {}).get("openAPIV3Schema") if isinstance(v.get("schema"), dict) else None
        if schema is None:
            out.append(cause(f"{path}.schema.openAPIV3Schema", "Required value: schemas are required",
                             "FieldValueRequired"))
        else:
            out += structural_problems(schema, f"{path}.schema.openAPIV3Schema")
        for j, col in enumerate(v.get("additionalPrinterColumns") or []):
            where = f"{path}.additionalPrinterColumns[{j}]"
            if not isinstance(col, dict) or not col.get("name") or not col.get("jsonPath"):
                out.append(cause(where, "Required value: name and jsonPath are required", "FieldValueRequired"))
            elif col.get("type") not in ("integer", "number", "string", "boolean", "date"):
                out.append(cause(f"{where}.type", f"Unsupported value: {go_value(col.get('type'))}: supported "
                                                  'values: "boolean", "date", "integer", "number", "string"',
                                 "FieldValueNotSupported"))
        subs = v.get("subresources")
        if subs is not None and not isinstance(subs, dict):
            out.append(cause(f"{path}.subresources", "Invalid value: must be an object"))
    return out
