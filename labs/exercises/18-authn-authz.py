"""Lab 18's exercises: grant a ServiceAccount exactly what it needs, with a Role and a RoleBinding.

Each check asks the cluster for a real token of the ServiceAccount (TokenRequest, with the
teacher's credentials) and makes real requests with it, so only the authorizer's answers count.
"""

from __future__ import annotations

from typing import Any

from labkit.practice import Exercise, Target, Verdict

SECURE = {"nodes": 0, "secure": True}  # RBAC needs a secure cluster; no pod has to run


def _as(t: Target, account: str) -> tuple[Any, str] | str:
    """An ApiClient acting as ServiceAccount ``account`` of the learner's namespace, or why there is none."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        t.core.read_namespaced_service_account(account, t.namespace)
    except ApiException as err:
        if err.status == 404:
            return f"there is no ServiceAccount {account!r} in namespace {t.namespace!r} yet"
        raise
    token = t.core.create_namespaced_service_account_token(
        account, t.namespace, {"spec": {"expirationSeconds": 600}}).status.token
    base = t.api_client.configuration
    cfg = client.Configuration()
    cfg.host, cfg.ssl_ca_cert, cfg.verify_ssl = base.host, base.ssl_ca_cert, base.verify_ssl
    cfg.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(cfg), f"system:serviceaccount:{t.namespace}:{account}"


def _allowed(api: Any, verb: str, resource: str, namespace: str, group: str = "", sub: str = "",
             name: str = "") -> bool:
    """What ``kubectl auth can-i`` asks: a SelfSubjectAccessReview, sent with the account's own token."""
    from kubernetes import client

    attrs = {"verb": verb, "resource": resource, "group": group, "namespace": namespace}
    if sub:
        attrs["subresource"] = sub
    if name:
        attrs["name"] = name
    review = client.AuthorizationV1Api(api).create_self_subject_access_review({"spec": {"resourceAttributes": attrs}})
    return bool(review.status.allowed)


def _status(call: Any) -> int:
    from kubernetes.client.rest import ApiException

    try:
        call()
        return 200
    except ApiException as err:
        return err.status


def _no_rbac(api: Any, who: str) -> str | None:
    if _allowed(api, "delete", "nodes", ""):
        return (f"{who} may delete Nodes: this cluster does not check RBAC (start it with "
                "labkit.Cluster(secure=True)), or someone bound it to a cluster-wide role")
    return None


# ---------------------------------------------------------------------------- 18.1 a read-only robot
def _verify_reader(t: Target) -> Verdict:
    from kubernetes import client

    got = _as(t, "reader")
    if isinstance(got, str):
        return Verdict.not_yet(got + ": create it (kubectl create serviceaccount reader)")
    api, who = got
    if (why := _no_rbac(api, who)) is not None:
        return Verdict.not_yet(why)
    core = client.CoreV1Api(api)
    if _status(lambda: core.list_namespaced_pod(t.namespace)) != 200:
        return Verdict.not_yet(f"{who} cannot list pods in {t.namespace} yet: bind it a Role that allows "
                               "get, list and watch on pods")
    if not _allowed(api, "watch", "pods", t.namespace):
        return Verdict.not_yet(f"{who} may list pods but not watch them (kubectl get -w needs watch)")
    if not _allowed(api, "get", "pods", t.namespace, sub="log"):
        return Verdict.not_yet(f"{who} cannot read pod logs: logs are the subresource pods/log")
    if _status(lambda: core.list_namespaced_secret(t.namespace)) == 200:
        return Verdict.not_yet(f"{who} can read the Secrets of {t.namespace}: that is more than read-only pods")
    if _allowed(api, "create", "pods", t.namespace) or _allowed(api, "delete", "pods", t.namespace):
        return Verdict.not_yet(f"{who} may create or delete pods: give it only get, list and watch")
    other = "kube-system" if t.namespace != "kube-system" else "default"
    if _status(lambda: core.list_namespaced_pod(other)) == 200:
        return Verdict.not_yet(f"{who} can list pods in {other} too: use a RoleBinding in {t.namespace}, "
                               "not a ClusterRoleBinding")
    return Verdict.ok(f"{who} reads pods and their logs in {t.namespace}, and nothing else")


def _solve_reader(t: Target) -> None:
    from kubernetes import client

    t.core.create_namespaced_service_account(t.namespace, {"metadata": {"name": "reader"}})
    rbac = client.RbacAuthorizationV1Api(t.api_client)
    rbac.create_namespaced_role(t.namespace, {"metadata": {"name": "pod-reader"}, "rules": [
        {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]}]})
    rbac.create_namespaced_role_binding(t.namespace, {
        "metadata": {"name": "reader-reads-pods"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": t.namespace}]})


# ---------------------------------------------------------------------------- 18.2 scale, but nothing else
def _deployment(name: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "main", "image": "busybox",
                                                           "command": ["sleep", "3600"]}]}}}}


def _setup_scaler(t: Target) -> None:
    for name in ("web", "api"):
        if t.deployment(name) is None:
            t.apps.create_namespaced_deployment(t.namespace, _deployment(name))


def _verify_scaler(t: Target) -> Verdict:
    from kubernetes import client

    for name in ("web", "api"):
        if t.deployment(name) is None:
            return Verdict.not_yet(f"there is no Deployment {name!r} in {t.namespace}: run "
                                   f"prepare('18.2', c) to make web and api")
    got = _as(t, "autoscaler")
    if isinstance(got, str):
        return Verdict.not_yet(got + ": create it (kubectl create serviceaccount autoscaler)")
    api, who = got
    if (why := _no_rbac(api, who)) is not None:
        return Verdict.not_yet(why)
    apps = client.AppsV1Api(api)
    replicas = t.deployment("web").spec.replicas or 0
    status = _status(lambda: apps.patch_namespaced_deployment_scale("web", t.namespace,
                                                                    {"spec": {"replicas": replicas}}))
    if status != 200:
        return Verdict.not_yet(f"{who} cannot scale web yet (PATCH deployments/web/scale got {status}): the "
                               "scale subresource is named deployments/scale in a rule")
    ns = t.namespace
    if _allowed(api, "patch", "deployments", ns, "apps", name="web"):
        return Verdict.not_yet(f"{who} may patch the whole Deployment web (its pod template too): allow only "
                               "the subresource deployments/scale")
    if _allowed(api, "delete", "deployments", ns, "apps", name="web"):
        return Verdict.not_yet(f"{who} may delete web: it should only scale it")
    if _allowed(api, "patch", "deployments", ns, "apps", sub="scale", name="api"):
        return Verdict.not_yet(f"{who} may scale api as well: name web alone in the rule's resourceNames")
    return Verdict.ok(f"{who} scales web, and cannot delete it, change its template, or scale api")


def _solve_scaler(t: Target) -> None:
    from kubernetes import client

    t.core.create_namespaced_service_account(t.namespace, {"metadata": {"name": "autoscaler"}})
    rbac = client.RbacAuthorizationV1Api(t.api_client)
    rbac.create_namespaced_role(t.namespace, {"metadata": {"name": "scale-web"}, "rules": [
        {"apiGroups": ["apps"], "resources": ["deployments/scale"], "resourceNames": ["web"],
         "verbs": ["get", "patch", "update"]}]})
    rbac.create_namespaced_role_binding(t.namespace, {
        "metadata": {"name": "autoscaler-scales-web"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "scale-web"},
        "subjects": [{"kind": "ServiceAccount", "name": "autoscaler", "namespace": t.namespace}]})


EXERCISES = [
    Exercise(
        id="18.1",
        title="A read-only robot",
        statement="""Create a ServiceAccount `reader` in your namespace, and give it exactly this: get,
list and watch pods **and read their logs** in your namespace. It must not read Secrets, create or
delete pods, or see any other namespace. The check gets a real token for `reader`
(`kubectl create token reader`) and tries its requests.""",
        verify=_verify_reader,
        solution=_solve_reader,
        solution_text="""```console
$ kubectl create serviceaccount reader
$ kubectl create role pod-reader --verb=get,list,watch --resource=pods,pods/log
$ kubectl create rolebinding reader-reads-pods --role=pod-reader --serviceaccount=<namespace>:reader
$ kubectl auth can-i list secrets --as=system:serviceaccount:<namespace>:reader   # no
```""",
        concept="RBAC: Role, RoleBinding, ServiceAccount subjects, subresources",
        difficulty="easy",
        cluster=SECURE,
    ),
    Exercise(
        id="18.2",
        title="Scale, but touch nothing else",
        statement="""`prepare("18.2", c)` makes two Deployments, `web` and `api`. An autoscaler will run
as the ServiceAccount `autoscaler` (create it). Let it change the number of replicas of `web`
**only**: it must not be able to edit the Deployment itself (its pod template), delete it, or scale
`api`. Hint: `kubectl scale` goes through the subresource `deployments/scale`, and a rule can name
objects with `resourceNames`.""",
        setup=_setup_scaler,
        verify=_verify_scaler,
        solution=_solve_scaler,
        solution_text="""```yaml
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: scale-web}
rules:
- apiGroups: [apps]
  resources: [deployments/scale]
  resourceNames: [web]
  verbs: [get, patch, update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: autoscaler-scales-web}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: scale-web}
subjects: [{kind: ServiceAccount, name: autoscaler, namespace: <namespace>}]
```""",
        concept="RBAC: subresources and resourceNames",
        difficulty="medium",
        cluster=SECURE,
    ),
]
