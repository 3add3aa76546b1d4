"""Authentication and RBAC on a secure cluster, as students, a teacher and kubelets meet them:
a 401 without a token, TLS refused with the wrong CA, one student's 403 on another's namespace
(pods, Secrets, ConfigMaps and watch), ``kubectl auth can-i`` answering as the bindings say,
ServiceAccount tokens from ``kubectl create token``, and a kubelet kept to its own Node."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
import urllib3
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from support.cluster import KUBECTL

from labkit.cluster import Cluster
from labkit.controlplane.apiserver import APIServer
from labkit.controlplane.apiserver.auth.attributes import Attributes
from labkit.controlplane.apiserver.auth.rbac import rule_allows
from labkit.controlplane.apiserver.auth.user import UserInfo

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


@pytest.fixture(scope="module")
def cluster():
    with Cluster(nodes=1, secure=True) as c:  # one kubelet, as its own system:node:node-1
        yield c


class Student:
    def __init__(self, cluster: Cluster, tmp, name: str):
        self.name = name
        self.namespace = f"{name}-{uuid.uuid4().hex[:5]}"
        self.token = cluster.add_user(name, ["students"])
        self.kubeconfig = str(cluster.write_kubeconfig(tmp / f"{name}.kubeconfig", name, self.token, self.namespace))
        core = cluster.core()
        core.create_namespace({"metadata": {"name": self.namespace}})
        core.create_namespaced_config_map(self.namespace, {"metadata": {"name": "settings"}, "data": {"k": "v"}})
        core.create_namespaced_secret(self.namespace, {"metadata": {"name": "password"}, "stringData": {"p": "x"}})
        client.RbacAuthorizationV1Api(cluster.client()).create_namespaced_role_binding(self.namespace, {
            "metadata": {"name": f"{name}-edit"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}]})

    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(config.new_client_from_config(config_file=self.kubeconfig))

    def kubectl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([KUBECTL, "--kubeconfig", self.kubeconfig, *args], capture_output=True, text=True,
                              timeout=30)


@pytest.fixture(scope="module")
def students(cluster, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("students")
    return Student(cluster, tmp, "alice"), Student(cluster, tmp, "bob")


def _forbidden(call) -> str:
    """The message of the 403 that ``call`` gets."""
    with pytest.raises(ApiException) as err:
        call()
    assert err.value.status == 403, err.value.body
    return json.loads(err.value.body)["message"]


def test_a_student_works_in_their_namespace_and_nowhere_else(students) -> None:
    alice, bob = students
    core = alice.core()
    core.create_namespaced_config_map(alice.namespace, {"metadata": {"name": "mine"}})
    assert core.read_namespaced_secret("password", alice.namespace).data["p"]
    assert _forbidden(lambda: core.list_namespaced_pod(bob.namespace)) == (
        f'pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "{bob.namespace}"')
    assert _forbidden(lambda: core.read_namespaced_secret("password", bob.namespace)) == (
        f'secrets "password" is forbidden: User "alice" cannot get resource "secrets" in API group "" in the '
        f'namespace "{bob.namespace}"')
    _forbidden(lambda: core.list_namespaced_config_map(bob.namespace))
    _forbidden(lambda: core.delete_namespaced_config_map("settings", bob.namespace))
    with pytest.raises(ApiException) as err:  # a watch on someone else's namespace: refused before any event
        for _ in watch.Watch().stream(core.list_namespaced_pod, bob.namespace, timeout_seconds=2):
            pass
    assert err.value.status == 403
    out = alice.kubectl("get", "configmaps", "-n", bob.namespace)
    assert out.returncode == 1
    assert out.stderr.strip() == (f'Error from server (Forbidden): configmaps is forbidden: User "alice" cannot list '
                                  f'resource "configmaps" in API group "" in the namespace "{bob.namespace}"')


def test_no_token_or_a_wrong_one_is_401(cluster, tmp_path) -> None:
    bare = cluster.write_kubeconfig(tmp_path / "none", "nobody", "")
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(config.new_client_from_config(config_file=str(bare))).list_namespaced_pod("default")
    assert err.value.status == 401 and json.loads(err.value.body)["reason"] == "Unauthorized"
    wrong = cluster.write_kubeconfig(tmp_path / "wrong", "mallory", "not-a-token")
    out = subprocess.run([KUBECTL, "--kubeconfig", str(wrong), "get", "pods"], capture_output=True, text=True,
                         timeout=30, stdin=subprocess.DEVNULL)
    assert out.returncode == 1
    # kubectl may first log its failed discovery ("the server has asked for the client to provide
    # credentials"), depending on what its discovery cache holds; its verdict is the last line
    assert out.stderr.strip().splitlines()[-1] == "error: You must be logged in to the server (Unauthorized)"


def test_a_kubeconfig_with_another_ca_fails_tls(cluster, students, tmp_path) -> None:
    from labkit.controlplane.apiserver.auth.pki import CertificateAuthority

    other = CertificateAuthority.create(tmp_path / "other-ca")
    from labkit.client.kubeconfig import write_kubeconfig

    path = write_kubeconfig(tmp_path / "kc", cluster.url, token=students[0].token, ca_data=other.pem)
    out = subprocess.run([KUBECTL, "--kubeconfig", str(path), "get", "pods"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 1 and "certificate signed by unknown authority" in out.stderr
    api = client.CoreV1Api(config.new_client_from_config(config_file=str(path)))
    api.api_client.configuration.retries = 0
    # the client reports the TLS failure as an ApiException (status 0) or urllib3's own error
    with pytest.raises((ApiException, urllib3.exceptions.HTTPError)) as err:
        api.list_namespaced_pod("default")
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value)


def test_can_i_answers_as_the_bindings_say(cluster, students) -> None:
    alice, bob = students
    asks = {("create", "deployments.apps", alice.namespace): "yes", ("get", "secrets", alice.namespace): "yes",
            ("create", "pods/exec", alice.namespace): "yes", ("delete", "resourcequotas", alice.namespace): "no",
            ("create", "rolebindings", alice.namespace): "no", ("list", "pods", bob.namespace): "no",
            ("list", "nodes", ""): "no"}
    for (verb, what, ns), want in asks.items():
        out = alice.kubectl("auth", "can-i", verb, what, *(["-n", ns] if ns else []))
        assert out.stdout.strip() == want, (verb, what, ns, out.stdout, out.stderr)
    listed = alice.kubectl("auth", "can-i", "--list", "-n", alice.namespace).stdout
    assert "deployments.apps" in listed and "selfsubjectaccessreviews.authorization.k8s.io" in listed
    assert "rolebindings" not in listed
    # a Role with one resourceName: can-i and the real request agree
    rbac = client.RbacAuthorizationV1Api(cluster.client())
    rbac.create_namespaced_role(bob.namespace, {"metadata": {"name": "one-map"}, "rules": [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["settings"], "verbs": ["get"]}]})
    rbac.create_namespaced_role_binding(bob.namespace, {
        "metadata": {"name": "alice-one-map"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                                           "name": "one-map"},
        "subjects": [{"kind": "User", "name": "alice"}]})
    assert alice.kubectl("auth", "can-i", "get", "configmap/settings", "-n", bob.namespace).stdout.strip() == "yes"
    assert alice.kubectl("auth", "can-i", "get", "configmap/other", "-n", bob.namespace).stdout.strip() == "no"
    assert alice.core().read_namespaced_config_map("settings", bob.namespace).data == {"k": "v"}
    _forbidden(lambda: alice.core().list_namespaced_config_map(bob.namespace))


def test_kubectl_create_token_gives_a_serviceaccount_identity(cluster, students, tmp_path) -> None:
    alice = students[0]
    assert alice.kubectl("create", "serviceaccount", "robot").returncode == 0
    out = alice.kubectl("create", "token", "robot")
    assert out.returncode == 0, out.stderr
    path = cluster.write_kubeconfig(tmp_path / "robot", "robot", out.stdout.strip(), alice.namespace)
    who = subprocess.run([KUBECTL, "--kubeconfig", str(path), "auth", "whoami", "-o", "jsonpath={.status.userInfo}"],
                         capture_output=True, text=True, timeout=30)
    assert f'"username":"system:serviceaccount:{alice.namespace}:robot"' in who.stdout, who.stderr
    robot = client.CoreV1Api(config.new_client_from_config(config_file=str(path)))
    _forbidden(lambda: robot.list_namespaced_pod(alice.namespace))  # no role bound to it yet
    alice.core().delete_namespaced_service_account("robot", alice.namespace)
    with pytest.raises(ApiException) as err:  # its ServiceAccount is gone: so is the token's power
        robot.list_namespaced_pod(alice.namespace)
    assert err.value.status == 401


def test_every_namespace_has_a_default_serviceaccount(students) -> None:
    """The ServiceAccounts controller makes ``default`` in each new namespace, so this works at once."""
    from support.cluster import wait_for

    bob = students[1]
    wait_for(lambda: bob.kubectl("create", "token", "default").returncode == 0, timeout=20,
             what="kubectl create token default in a new namespace")


def test_a_kubelet_changes_only_its_own_node(cluster, students) -> None:
    core = cluster.core()
    core.create_node({"metadata": {"name": "elsewhere"}})
    try:
        kubelet = client.CoreV1Api(config.new_client_from_config(
            config_file=cluster.component_kubeconfigs["kubelet-node-1"]))
        kubelet.patch_node("node-1", {"metadata": {"labels": {"checked": "yes"}}})
        assert _forbidden(lambda: kubelet.patch_node("elsewhere", {"metadata": {"labels": {"hijacked": "yes"}}})) == (
            'nodes "elsewhere" is forbidden: node "node-1" is not allowed to modify node "elsewhere"')
        _forbidden(lambda: kubelet.delete_node("elsewhere"))
        assert "hijacked" not in (core.read_node("elsewhere").metadata.labels or {})
        # no pod on node-1 uses alice's Secret, so its kubelet may not read it
        _forbidden(lambda: kubelet.read_namespaced_secret("password", students[0].namespace))
        _forbidden(lambda: kubelet.list_secret_for_all_namespaces())
    finally:
        core.delete_node("elsewhere")


def test_nobody_grants_rights_they_do_not_hold(cluster, students, tmp_path) -> None:
    alice = students[0]
    rbac = client.RbacAuthorizationV1Api(cluster.client())
    rbac.create_namespaced_role_binding(alice.namespace, {
        "metadata": {"name": "dana-admin"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                                         "kind": "ClusterRole", "name": "admin"},
        "subjects": [{"kind": "User", "name": "dana"}]})
    dana = cluster.write_kubeconfig(tmp_path / "dana", "dana", cluster.add_user("dana"), alice.namespace)
    as_dana = client.RbacAuthorizationV1Api(config.new_client_from_config(config_file=str(dana)))

    def binding(name: str, role: str) -> dict:
        return {"metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "User", "name": "dana"}]}

    as_dana.create_namespaced_role_binding(alice.namespace, binding("dana-edit", "edit"))  # held: allowed
    message = _forbidden(lambda: as_dana.create_namespaced_role_binding(alice.namespace,
                                                                         binding("dana-root", "cluster-admin")))
    assert message.startswith('rolebindings.rbac.authorization.k8s.io "dana-root" is forbidden: user "dana" '
                              '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not '
                              "currently held:\n{APIGroups:[\"*\"], Resources:[\"*\"], Verbs:[\"*\"]}")
    _forbidden(lambda: as_dana.create_namespaced_role(alice.namespace, {"metadata": {"name": "nodes"}, "rules": [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]}))


def test_each_component_works_as_itself(cluster) -> None:
    from labkit.client.conditions import is_ready

    for component, user in (("scheduler", "system:kube-scheduler"),
                            ("controller-manager", "system:kube-controller-manager"),
                            ("kubelet-node-1", "system:node:node-1")):
        api = config.new_client_from_config(config_file=cluster.component_kubeconfigs[component])
        who = client.AuthenticationV1Api(api).create_self_subject_review({}).status.user_info
        assert who.username == user
    node = cluster.api_get("/api/v1/nodes/node-1")
    assert is_ready(node)  # the kubelet registered and reports its Node as system:node:node-1
    assert node["spec"].get("podCIDR")  # the controller-manager's node IPAM wrote it, as itself


def test_a_plain_apiserver_refuses_a_non_loopback_address() -> None:
    with pytest.raises(ValueError, match="refusing to listen on 0.0.0.0 without TLS"):
        APIServer("memory", host="0.0.0.0")
    with pytest.raises(ValueError, match="not one of AlwaysAllow, AlwaysDeny, Node, RBAC"):
        APIServer("memory", authorization_mode="ABAC")
    with pytest.raises(ValueError, match="an apiserver listening on 0.0.0.0 needs secure=True"):
        Cluster(nodes=0, bind="0.0.0.0")


def test_client_certificates_and_late_tokens_authenticate(tmp_path) -> None:
    import ssl
    import sys
    import urllib.request

    from labkit.controlplane.apiserver.auth.pki import CertificateAuthority, make_cluster_pki
    from labkit.controlplane.apiserver.auth.tokens import append_token

    tls = make_cluster_pki(tmp_path)
    tokens = tmp_path / "tokens.csv"
    tokens.write_text("")
    ca = CertificateAuthority.load(tmp_path)
    cert = ca.issue(tmp_path / "teacher.crt", tmp_path / "teacher.key", "teacher", ["system:masters"])
    with APIServer("memory", tls=tls, token_file=tokens, authorization_mode="Node,RBAC") as api:
        def whoami(token: str | None = None, certificate: tuple[str, str] | None = None) -> dict:
            ctx = ssl.create_default_context(cafile=tls.client_ca_file)
            if certificate:
                ctx.load_cert_chain(*certificate)
            req = urllib.request.Request(api.url + "/apis/authentication.k8s.io/v1/selfsubjectreviews", data=b"{}",
                                         headers={"Authorization": f"Bearer {token}"} if token else {})
            with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                return json.loads(r.read())["status"]["userInfo"]

        assert whoami(certificate=cert) == {"username": "teacher",
                                            "groups": ["system:masters", "system:authenticated"]}
        late = append_token(tokens, "latecomer", ["students"])  # added while the server runs
        assert whoami(late)["username"] == "latecomer"
    out = subprocess.run([sys.executable, "-m", "labkit.controlplane.apiserver", "--bind", "0.0.0.0",
                          "--store", "memory", "--port", "0"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "refusing to listen on 0.0.0.0 without TLS" in out.stderr


@pytest.mark.parametrize("rule,attrs,allowed", [
    ({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, ("delete", "apps", "deployments", "", "x"), True),
    ({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}, ("get", "apps", "deployments",
                                                                            "scale", "x"), False),
    ({"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["patch"]},
     ("patch", "apps", "deployments", "scale", "x"), True),
    ({"apiGroups": [""], "resources": ["*/log"], "verbs": ["get"]}, ("get", "", "pods", "log", "p"), True),
    ({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "resourceNames": ["p"]},
     ("get", "", "pods", "", "q"), False),
    ({"apiGroups": [""], "resources": ["pods"], "verbs": ["list"], "resourceNames": ["p"]},
     ("list", "", "pods", "", ""), False),
])
def test_rbac_rules_match_as_kube_apiserver_matches_them(rule, attrs, allowed) -> None:
    verb, group, resource, sub, name = attrs
    a = Attributes(UserInfo("u"), verb, True, group, "v1", resource, sub, "ns", name)
    assert rule_allows(rule, a) is allowed
