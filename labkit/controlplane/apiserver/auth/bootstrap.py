"""The roles and bindings every cluster starts with (kube-apiserver's bootstrap policy, abridged).

``view``, ``edit``, ``admin`` and ``cluster-admin`` for people; ``system:basic-user`` and
``system:discovery`` so that any signed-in user can run discovery and ``kubectl auth can-i``;
and one role per control-plane component. kube-apiserver builds view/edit/admin by aggregation
(labels); here they are written out, with the same effect for the built-in resources.
"""

from __future__ import annotations

READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
ALL = READ + WRITE


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def _urls(urls: list[str], verbs: list[str]) -> dict:
    return {"nonResourceURLs": urls, "verbs": verbs}


_VIEW_CORE = ["pods", "pods/log", "pods/status", "configmaps", "endpoints", "persistentvolumeclaims",
              "persistentvolumeclaims/status", "services", "services/status", "serviceaccounts", "events",
              "limitranges", "resourcequotas", "resourcequotas/status", "namespaces", "namespaces/status",
              "bindings", "replicationcontrollers", "replicationcontrollers/scale", "replicationcontrollers/status"]
_APPS = ["deployments", "deployments/scale", "deployments/status", "replicasets", "replicasets/scale",
         "replicasets/status", "statefulsets", "statefulsets/scale", "statefulsets/status", "daemonsets",
         "daemonsets/status", "controllerrevisions"]
_BATCH = ["jobs", "jobs/status", "cronjobs", "cronjobs/status"]
_VIEW = [
    _rule([""], _VIEW_CORE, READ),
    _rule(["apps"], _APPS, READ),
    _rule(["batch"], _BATCH, READ),
    _rule(["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"], READ),
    _rule(["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"], READ),
    _rule(["networking.k8s.io"], ["ingresses", "ingresses/status", "networkpolicies"], READ),
    _rule(["discovery.k8s.io"], ["endpointslices"], READ),
]
_EDIT = _VIEW + [
    _rule([""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "configmaps", "endpoints",
                 "persistentvolumeclaims", "replicationcontrollers", "replicationcontrollers/scale", "secrets",
                 "services", "services/proxy", "serviceaccounts"], WRITE),
    _rule([""], ["secrets", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "services/proxy"], READ),
    _rule([""], ["pods/eviction", "serviceaccounts/token"], ["create"]),
    _rule([""], ["serviceaccounts"], ["impersonate"]),
    _rule(["apps"], _APPS, WRITE),
    _rule(["batch"], _BATCH, WRITE),
    _rule(["autoscaling"], ["horizontalpodautoscalers"], WRITE),
    _rule(["policy"], ["poddisruptionbudgets"], WRITE),
    _rule(["networking.k8s.io"], ["ingresses", "networkpolicies"], WRITE),
    _rule(["coordination.k8s.io"], ["leases"], ALL),
    _rule(["discovery.k8s.io"], ["endpointslices"], WRITE),
]
_ADMIN = _EDIT + [
    _rule(["rbac.authorization.k8s.io"], ["roles", "rolebindings"], ALL),
    _rule(["authorization.k8s.io"], ["localsubjectaccessreviews"], ["create"]),
]
_DISCOVERY_URLS = ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*",
                   "/readyz", "/version", "/version/"]
_PUBLIC_URLS = ["/healthz", "/livez", "/readyz", "/version", "/version/"]

CLUSTER_ROLES: dict[str, list[dict]] = {
    "cluster-admin": [_rule(["*"], ["*"], ["*"]), _urls(["*"], ["*"])],
    "admin": _ADMIN,
    "edit": _EDIT,
    "view": _VIEW,
    "system:basic-user": [
        _rule(["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], ["create"]),
        _rule(["authentication.k8s.io"], ["selfsubjectreviews"], ["create"])],
    "system:discovery": [_urls(_DISCOVERY_URLS, ["get"])],
    "system:public-info-viewer": [_urls(_PUBLIC_URLS, ["get"])],
    # labkit's scheduler: reads everything it filters on, binds and preempts pods, writes events
    "system:kube-scheduler": [
        _rule(["*"], ["*"], READ),
        _rule([""], ["pods/binding", "bindings"], ["create"]),
        _rule([""], ["pods"], ["delete", "patch"]),  # preemption; patch: labkit's why-this-node annotation
        _rule([""], ["pods/status"], ["patch", "update"]),
        _rule(["", "events.k8s.io"], ["events"], ["create", "patch", "update"]),
        _rule(["coordination.k8s.io"], ["leases"], ALL),
        _urls(_DISCOVERY_URLS, ["get"])],
    # labkit's controller-manager runs every controller under one identity (kube-controller-manager
    # gives each controller its own ServiceAccount): it may do anything to API objects
    "system:kube-controller-manager": [_rule(["*"], ["*"], ["*"]), _urls(_DISCOVERY_URLS, ["get"])],
}

CLUSTER_ROLE_BINDINGS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "cluster-admin": ("cluster-admin", [("Group", "system:masters")]),
    "system:basic-user": ("system:basic-user", [("Group", "system:authenticated")]),
    "system:discovery": ("system:discovery", [("Group", "system:authenticated")]),
    "system:public-info-viewer": ("system:public-info-viewer",
                                  [("Group", "system:authenticated"), ("Group", "system:unauthenticated")]),
    "system:kube-scheduler": ("system:kube-scheduler", [("User", "system:kube-scheduler")]),
    "system:kube-controller-manager": ("system:kube-controller-manager",
                                       [("User", "system:kube-controller-manager")]),
}

_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
_ANNOTATIONS = {"rbac.authorization.kubernetes.io/autoupdate": "true"}


def cluster_roles() -> list[dict]:
    return [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
             "metadata": {"name": name, "labels": dict(_LABELS), "annotations": dict(_ANNOTATIONS)},
             "rules": rules} for name, rules in CLUSTER_ROLES.items()]


def cluster_role_bindings() -> list[dict]:
    out = []
    for name, (role, subjects) in CLUSTER_ROLE_BINDINGS.items():
        out.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                    "metadata": {"name": name, "labels": dict(_LABELS), "annotations": dict(_ANNOTATIONS)},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": k, "name": n}
                                 for k, n in subjects]})
    return out
