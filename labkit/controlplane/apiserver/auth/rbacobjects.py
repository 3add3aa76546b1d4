"""Validation of RBAC objects, with kube-apiserver's rules and messages for the common mistakes."""

from __future__ import annotations

from ..validation import cause

_SUBJECT_KINDS = ("User", "Group", "ServiceAccount")


def _rules(obj: dict) -> list[dict]:
    out: list[dict] = []
    for i, r in enumerate(obj.get("rules") or []):
        f = f"rules[{i}]"
        if not r.get("verbs"):
            out.append(cause(f"{f}.verbs", "Required value: verbs must contain at least one value",
                             "FieldValueRequired"))
        if r.get("nonResourceURLs") and r.get("resources"):
            out.append(cause(f"{f}.nonResourceURLs", "Invalid value: rules cannot apply to both regular "
                             "resources and non-resource URLs"))
        elif not r.get("nonResourceURLs") and not r.get("resources"):
            out.append(cause(f"{f}.resources", "Required value: resource rules must supply at least one "
                             "resource", "FieldValueRequired"))
        elif r.get("resources") and r.get("apiGroups") is None:
            out.append(cause(f"{f}.apiGroups", "Required value: resource rules must supply at least one api "
                             "group", "FieldValueRequired"))
    return out


def validate_role(obj: dict, old: dict | None) -> list[dict]:
    return _rules(obj)


def validate_cluster_role(obj: dict, old: dict | None) -> list[dict]:
    return _rules(obj)


def _binding(obj: dict, old: dict | None, namespaced: bool) -> list[dict]:
    out: list[dict] = []
    ref = obj.get("roleRef") or {}
    kinds = ("Role", "ClusterRole") if namespaced else ("ClusterRole",)
    if ref.get("kind") not in kinds:
        out.append(cause("roleRef.kind", f'Unsupported value: "{ref.get("kind", "")}": supported values: '
                         + ", ".join(f'"{k}"' for k in kinds), "FieldValueNotSupported"))
    if not ref.get("name"):
        out.append(cause("roleRef.name", "Required value", "FieldValueRequired"))
    if old is not None and (old.get("roleRef") or {}) != ref:
        out.append(cause("roleRef", "Invalid value: cannot change roleRef"))
    for i, s in enumerate(obj.get("subjects") or []):
        if s.get("kind") not in _SUBJECT_KINDS:
            out.append(cause(f"subjects[{i}].kind", f'Unsupported value: "{s.get("kind", "")}": supported '
                             'values: "ServiceAccount", "User", "Group"', "FieldValueNotSupported"))
        if not s.get("name"):
            out.append(cause(f"subjects[{i}].name", "Required value", "FieldValueRequired"))
        if s.get("kind") == "ServiceAccount" and not namespaced and not s.get("namespace"):
            out.append(cause(f"subjects[{i}].namespace", "Required value", "FieldValueRequired"))
    return out


def validate_role_binding(obj: dict, old: dict | None) -> list[dict]:
    return _binding(obj, old, True)


def validate_cluster_role_binding(obj: dict, old: dict | None) -> list[dict]:
    return _binding(obj, old, False)


def default_binding(obj: dict) -> None:
    """Subjects of kind User and Group get the RBAC apiGroup, as kube-apiserver defaults them."""
    for s in obj.get("subjects") or []:
        if isinstance(s, dict) and s.get("kind") in ("User", "Group"):
            s.setdefault("apiGroup", "rbac.authorization.k8s.io")
        elif isinstance(s, dict) and s.get("kind") == "ServiceAccount":
            s.setdefault("apiGroup", "")
