"""The RBAC authorizer (``rbac.authorization.k8s.io/v1``): Roles and ClusterRoles grant rules,
RoleBindings and ClusterRoleBindings grant roles to users, groups and ServiceAccounts.

Nothing is ever denied by a rule; a request is allowed when some rule bound to one of its
subjects matches it. The authorizer keeps every role and binding in memory, fed by the watch
cache, with bindings indexed by subject, so a request looks only at its own subjects' bindings
(a class of 1,000 RoleBindings costs a student's request no more than ten do).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable

from .attributes import Attributes
from .user import MASTERS, SA_PREFIX, UserInfo

PREFIXES = {"roles": "/registry/roles/", "clusterroles": "/registry/clusterroles/",
            "rolebindings": "/registry/rolebindings/", "clusterrolebindings": "/registry/clusterrolebindings/"}

Subject = tuple[str, str]  # ("User" | "Group", name); a ServiceAccount is its user name


def _has(values: list | None, want: str) -> bool:
    return bool(values) and ("*" in values or want in values)  # type: ignore[operator]


def resource_matches(rule_resources: list, resource: str, sub: str) -> bool:
    """kube-apiserver's ResourceMatches: ``*``, ``res``, ``res/sub`` and ``*/sub``."""
    full = f"{resource}/{sub}" if sub else resource
    for r in rule_resources or ():
        if r == "*" or r == full:
            return True
        if sub and r == f"*/{sub}":
            return True
    return False


def url_matches(urls: list, path: str) -> bool:
    for u in urls or ():
        if u == "*" or u == path or (u.endswith("*") and path.startswith(u[:-1])):
            return True
    return False


def rule_allows(rule: dict, a: Attributes) -> bool:
    if not _has(rule.get("verbs"), a.verb):
        return False
    if not a.resource_request:
        return url_matches(rule.get("nonResourceURLs") or [], a.path)
    if not _has(rule.get("apiGroups"), a.api_group) or not resource_matches(rule.get("resources") or [],
                                                                             a.resource, a.subresource):
        return False
    names = rule.get("resourceNames")
    return not names or a.name in names


def subjects_of(user: UserInfo) -> list[Subject]:
    return [("User", user.name), *(("Group", g) for g in user.groups)]


def _subject_key(s: dict, binding_ns: str | None) -> Subject | None:
    kind = s.get("kind")
    if kind == "ServiceAccount":
        ns = s.get("namespace") or binding_ns
        return ("User", f"{SA_PREFIX}{ns}:{s.get('name', '')}") if ns else None
    if kind in ("User", "Group"):
        return (kind, s.get("name", ""))
    return None


class RBACAuthorizer:
    """Answers "may this user do this?" from the roles and bindings the watch cache delivers."""

    def __init__(self) -> None:
        self.roles: dict[tuple[str, str], list[dict]] = {}
        self.cluster_roles: dict[str, list[dict]] = {}
        self.bindings: dict[str, dict] = {}  # store key -> binding (both kinds)
        self.cluster_index: dict[Subject, set[str]] = defaultdict(set)
        self.ns_index: dict[tuple[str, Subject], set[str]] = defaultdict(set)

    # ------------------------------------------------------------------ keeping up with the store
    def load(self, items: Iterable[tuple[str, bytes]]) -> None:
        for key, value in items:
            self._put(key, value)

    def watch(self, events: list) -> None:
        """Hub listener: apply every change to a role or binding."""
        for ev in events:
            if ev.resource in PREFIXES:
                self._put(ev.key, None if ev.type == "DELETED" else ev.value)

    def _put(self, key: str, value: bytes | None) -> None:
        parts = key.split("/")  # "", registry, resource, [ns,] name
        resource = parts[2]
        obj = json.loads(value) if value is not None else None
        if resource == "clusterroles":
            self._set(self.cluster_roles, parts[3], obj)
        elif resource == "roles":
            self._set(self.roles, (parts[3], parts[4]), obj)
        elif resource in ("rolebindings", "clusterrolebindings"):
            self._unindex(key)
            if obj is not None:
                ns = parts[3] if resource == "rolebindings" else None
                self.bindings[key] = obj
                for s in obj.get("subjects") or ():
                    sk = _subject_key(s, ns)
                    if sk is None:
                        continue
                    if ns is None:
                        self.cluster_index[sk].add(key)
                    else:
                        self.ns_index[(ns, sk)].add(key)

    @staticmethod
    def _set(table: dict, key: object, obj: dict | None) -> None:
        if obj is None:
            table.pop(key, None)
        else:
            table[key] = [r for r in obj.get("rules") or () if isinstance(r, dict)]

    def _unindex(self, key: str) -> None:
        old = self.bindings.pop(key, None)
        if old is None:
            return
        ns = key.split("/")[3] if key.startswith(PREFIXES["rolebindings"]) else None
        for s in old.get("subjects") or ():
            sk = _subject_key(s, ns)
            if sk is None:
                continue
            index: dict = self.cluster_index if ns is None else self.ns_index
            ik = sk if ns is None else (ns, sk)
            keys = index.get(ik)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del index[ik]

    # ------------------------------------------------------------------ deciding
    def _role_rules(self, binding: dict, ns: str | None) -> list[dict]:
        ref = binding.get("roleRef") or {}
        if ref.get("kind") == "ClusterRole":
            return self.cluster_roles.get(ref.get("name", ""), [])
        if ref.get("kind") == "Role" and ns is not None:
            return self.roles.get((ns, ref.get("name", "")), [])
        return []

    def applicable_rules(self, user: UserInfo, namespace: str) -> Iterable[list[dict]]:
        """Every rule list that applies to ``user`` in ``namespace`` (cluster-wide ones first)."""
        subjects = subjects_of(user)
        for s in subjects:
            for key in self.cluster_index.get(s, ()):
                yield self._role_rules(self.bindings[key], None)
        if namespace:
            for s in subjects:
                for key in self.ns_index.get((namespace, s), ()):
                    yield self._role_rules(self.bindings[key], namespace)

    def authorize(self, a: Attributes) -> tuple[bool, str]:
        if MASTERS in a.user.groups:  # the privileged group, before any rule (kube-apiserver does the same)
            return True, ""
        for rules in self.applicable_rules(a.user, a.namespace if a.resource_request else ""):
            for rule in rules:
                if rule_allows(rule, a):
                    return True, ""
        return False, ""

    def rules_review(self, user: UserInfo, namespace: str) -> tuple[list[dict], list[dict]]:
        """(resourceRules, nonResourceRules) for a SelfSubjectRulesReview."""
        res: list[dict] = []
        nonres: list[dict] = []
        for rules in self.applicable_rules(user, namespace):
            for r in rules:
                if r.get("nonResourceURLs"):
                    nonres.append({"verbs": r.get("verbs") or [], "nonResourceURLs": r["nonResourceURLs"]})
                if r.get("resources"):
                    out = {"verbs": r.get("verbs") or [], "apiGroups": r.get("apiGroups") or [],
                           "resources": r["resources"]}
                    if r.get("resourceNames"):
                        out["resourceNames"] = r["resourceNames"]
                    res.append(out)
        return res, nonres
