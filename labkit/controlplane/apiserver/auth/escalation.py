"""RBAC's escalation check: nobody grants, through a Role or a binding, rights they do not hold.

kube-apiserver refuses to store a Role or ClusterRole with a rule its author is not allowed
(unless they may ``escalate`` roles), and a RoleBinding or ClusterRoleBinding to a role whose
rules its author does not hold where the binding applies (unless they may ``bind`` that role).
Without it, a user who may write RoleBindings could bind themselves ``cluster-admin``.
"""

from __future__ import annotations

from itertools import product

from .. import errors
from .attributes import Attributes
from .rbac import RBACAuthorizer
from .user import MASTERS, UserInfo

RBAC_GROUP = "rbac.authorization.k8s.io"
ROLE_KINDS = {"roles": "Role", "clusterroles": "ClusterRole"}
BINDING_KINDS = {"rolebindings": "RoleBinding", "clusterrolebindings": "ClusterRoleBinding"}


def uncovered(rbac: RBACAuthorizer, user: UserInfo, namespace: str, rules: list[dict]) -> list[dict]:
    """The rules ``user`` does not hold in ``namespace`` ("" = cluster-wide). A ``*`` in a rule is
    held only where the user's own rules say ``*`` too, as kube-apiserver's coverage check has it."""
    missing = []
    for rule in rules:
        if not isinstance(rule, dict):
            continue
        verbs = rule.get("verbs") or []
        if rule.get("nonResourceURLs"):
            asks = [Attributes(user, v, False, path=u) for v, u in product(verbs, rule["nonResourceURLs"])]
        else:
            asks = []
            for v, g, r, n in product(verbs, rule.get("apiGroups") or [""], rule.get("resources") or [],
                                      rule.get("resourceNames") or [""]):
                res, _, sub = r.partition("/")
                asks.append(Attributes(user, v, True, g, "", res, sub, namespace, n))
        if not all(rbac.authorize(a)[0] for a in asks):
            missing.append(rule)
    return missing


def _words(rule: dict) -> str:
    parts = []  # Go's PolicyRule.CompactString, as kube-apiserver prints it
    for key, word in (("apiGroups", "APIGroups"), ("resources", "Resources"), ("resourceNames", "ResourceNames"),
                      ("nonResourceURLs", "NonResourceURLs"), ("verbs", "Verbs")):
        if rule.get(key):
            parts.append(f"{word}:[" + " ".join(f'"{x}"' for x in rule[key]) + "]")
    return "{" + ", ".join(parts) + "}"


def refused(resource: str, name: str, user: UserInfo, missing: list[dict]) -> errors.StatusError:
    groups = " ".join(f'"{g}"' for g in user.groups)
    message = (f'{resource}.{RBAC_GROUP} "{name}" is forbidden: user "{user.name}" (groups=[{groups}]) is '
               "attempting to grant RBAC permissions not currently held:\n" + "\n".join(_words(r) for r in missing))
    return errors.StatusError(403, "Forbidden", message, {"name": name, "group": RBAC_GROUP, "kind": resource})


def check(rbac: RBACAuthorizer, a: Attributes, body: dict | None, old_binding: dict | None) -> errors.StatusError | None:
    """None when the write may go ahead; else kube-apiserver's 403."""
    user = a.user
    if MASTERS in user.groups or a.api_group != RBAC_GROUP or a.verb not in ("create", "update", "patch"):
        return None
    namespace = a.namespace if a.resource in ("roles", "rolebindings") else ""
    name = a.name or ((body or {}).get("metadata") or {}).get("name", "")
    if a.resource in ROLE_KINDS:
        if rbac.authorize(Attributes(user, "escalate", True, RBAC_GROUP, "", a.resource, "", a.namespace, name))[0]:
            return None
        if a.verb == "patch":  # the patched rules are known only after the patch: escalate is needed
            return refused(a.resource, name, user, [{"verbs": ["escalate"], "apiGroups": [RBAC_GROUP],
                                                     "resources": [a.resource]}])
        missing = uncovered(rbac, user, namespace, (body or {}).get("rules") or [])
        return refused(a.resource, name, user, missing) if missing else None
    if a.resource in BINDING_KINDS:
        ref = ((body or {}).get("roleRef") if a.verb != "patch" else None) or (old_binding or {}).get("roleRef") or {}
        kind, role = ref.get("kind"), ref.get("name", "")
        plural = "clusterroles" if kind == "ClusterRole" else "roles"
        if rbac.authorize(Attributes(user, "bind", True, RBAC_GROUP, "", plural, "",
                                     namespace if plural == "roles" else "", role))[0]:
            return None
        rules = (rbac.cluster_roles.get(role) if kind == "ClusterRole"
                 else rbac.roles.get((namespace, role))) or []
        missing = uncovered(rbac, user, namespace, rules)
        return refused(a.resource, name, user, missing) if missing else None
    return None
