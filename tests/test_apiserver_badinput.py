"""Bad input gets the Status error Kubernetes would give - never a 5xx - and the store is unchanged."""

from __future__ import annotations

import json

import pytest
import requests
from support.apiserver import deployment, pod


def _post(api, path, data, content_type="application/json", **params):
    headers = {"Content-Type": content_type} if content_type else {}
    return requests.post(api.url + path, data=data, headers=headers, params=params, timeout=10)


CASES = [
    # (name, path suffix, body, content type, params, code, reason)
    ("malformed-json", "pods", b'{"metadata": {', "application/json", {}, 400, "BadRequest"),
    ("malformed-yaml", "pods", b"metadata: [unclosed", "application/yaml", {}, 400, "BadRequest"),
    ("not-an-object", "pods", b"[1,2]", "application/json", {}, 400, "BadRequest"),
    ("wrong-kind", "pods", json.dumps({**pod("x"), "kind": "Service"}).encode(), "application/json", {}, 400,
     "BadRequest"),
    ("invalid-name", "pods", json.dumps(pod("Bad_Name")).encode(), "application/json", {}, 422, "Invalid"),
    ("no-containers", "pods", json.dumps({"metadata": {"name": "x"}, "spec": {}}).encode(), None, {}, 422,
     "Invalid"),
    ("no-image", "pods", json.dumps({"metadata": {"name": "x"}, "spec": {"containers": [{"name": "c"}]}}).encode(),
     None, {}, 422, "Invalid"),
    ("unknown-field-strict", "pods", json.dumps({**pod("x"), "spek": {}}).encode(), "application/json",
     {"fieldValidation": "Strict"}, 400, "BadRequest"),
    ("unsupported-media", "pods", b"<pod/>", "application/xml", {}, 415, "UnsupportedMediaType"),
    ("too-large", "configmaps", json.dumps({"metadata": {"name": "big"}, "data": {"a": "x" * (3 * 1024 * 1024)}}
                                           ).encode(), "application/json", {}, 413, "RequestEntityTooLarge"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_bodies_are_rejected_and_nothing_is_stored(api, ns, case):
    _, resource, body, ct, params, code, reason = case
    before = api.store.revision
    r = _post(api, f"/api/v1/namespaces/{ns}/{resource}", body, ct, **params)
    assert r.status_code == code, r.text
    status = r.json()
    assert status["kind"] == "Status" and status["status"] == "Failure"
    assert status["reason"] == reason and status["code"] == code
    assert api.store.revision == before


def test_invalid_reports_causes_like_kubernetes(api, ns):
    bad = deployment("web")
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    r = requests.post(f"{api.url}/apis/apps/v1/namespaces/{ns}/deployments", json=bad, timeout=10)
    s = r.json()
    assert r.status_code == 422 and s["details"]["kind"] == "Deployment" and s["details"]["group"] == "apps"
    assert s["details"]["causes"][0]["field"] == "spec.template.metadata.labels"
    assert "`selector` does not match template `labels`" in s["message"]


def test_unknown_fields_warn_by_default(api, ns):
    r = _post(api, f"/api/v1/namespaces/{ns}/pods", json.dumps({**pod("warned"), "spek": 1}).encode())
    assert r.status_code == 201
    assert 'unknown field \\"spek\\"' in r.headers["Warning"]
    assert "spek" not in r.json()


def test_yaml_and_no_content_type_are_accepted(api, ns):
    r = _post(api, f"/api/v1/namespaces/{ns}/configmaps", b"metadata:\n  name: from-yaml\ndata:\n  a: b\n",
              "application/yaml")
    assert r.status_code == 201 and r.json()["data"] == {"a": "b"}
    r = _post(api, f"/api/v1/namespaces/{ns}/configmaps", json.dumps({"metadata": {"name": "plain"}}).encode(), None)
    assert r.status_code == 201


@pytest.mark.parametrize("method,path,code,reason", [
    ("GET", "/api/v1/namespaces/{ns}/pods/missing", 404, "NotFound"),
    ("GET", "/api/v1/namespaces/{ns}/widgets", 404, "NotFound"),
    ("GET", "/apis/nope.io/v1/things", 404, "NotFound"),
    ("POST", "/api/v1/namespaces/{ns}/pods/p", 405, "MethodNotAllowed"),
    ("GET", "/api/v1/namespaces/{ns}/pods?labelSelector=a%20b%20c", 400, "BadRequest"),
    ("GET", "/api/v1/namespaces/{ns}/pods?fieldSelector=spec.image%3Dx", 400, "BadRequest"),
    ("GET", "/api/v1/namespaces/{ns}/pods?limit=abc", 400, "BadRequest"),
    ("GET", "/api/v1/namespaces/{ns}/pods?limit=1&continue=garbage", 400, "BadRequest"),
    ("PATCH", "/api/v1/namespaces/{ns}/pods/p", 415, "UnsupportedMediaType"),
])
def test_bad_requests_get_status_errors(api, ns, method, path, code, reason):
    requests.post(f"{api.url}/api/v1/namespaces/{ns}/pods", json=pod("p"), timeout=10)
    before = api.store.revision
    r = requests.request(method, api.url + path.format(ns=ns), data=b"{}",
                         headers={"Content-Type": "application/json"}, timeout=10)
    assert (r.status_code, r.json()["reason"]) == (code, reason)
    assert api.store.revision == before


def test_create_in_missing_namespace_is_404(api):
    r = requests.post(f"{api.url}/api/v1/namespaces/no-such-ns/pods", json=pod("p"), timeout=10)
    assert r.status_code == 404 and r.json()["details"]["kind"] == "namespaces"


def test_bad_patches_leave_the_object_alone(api, ns):
    url = f"{api.url}/api/v1/namespaces/{ns}/pods"
    requests.post(url, json=pod("pp"), timeout=10)
    before = api.store.revision
    for ct, body in [("application/json-patch+json", '[{"op": "remove", "path": "/nope"}]'),
                     ("application/merge-patch+json", '{"metadata": '),
                     ("application/strategic-merge-patch+json", '{"spec": {"containers": [{"image": "x"}]}}'),
                     ("application/merge-patch+json", '{"spec": {"containers": null}}')]:
        r = requests.patch(f"{url}/pp", data=body, headers={"Content-Type": ct}, timeout=10)
        assert r.status_code in (400, 422), (ct, body, r.text)
        assert r.json()["kind"] == "Status"
    assert api.store.revision == before


def test_table_for_kubectl_get(api, ns):
    requests.post(f"{api.url}/api/v1/namespaces/{ns}/pods", json=pod("tp", {"app": "t"}), timeout=10)
    r = requests.get(f"{api.url}/api/v1/namespaces/{ns}/pods", timeout=10, headers={
        "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"})
    assert r.headers["Content-Type"] == "application/json;as=Table;v=v1;g=meta.k8s.io"
    t = r.json()
    assert [c["name"] for c in t["columnDefinitions"] if c["priority"] == 0] == \
        ["Name", "Ready", "Status", "Restarts", "Age"]
    assert t["rows"][0]["cells"][:3] == ["tp", "0/1", "Pending"]
    assert t["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert t["rows"][0]["object"]["metadata"]["labels"] == {"app": "t"}


def test_discovery_and_version(api):
    assert requests.get(api.url + "/version", timeout=5).json()["major"] == "1"
    assert requests.get(api.url + "/healthz", timeout=5).text == "ok"
    assert requests.get(api.url + "/api", timeout=5).json()["versions"] == ["v1"]
    groups = {g["name"] for g in requests.get(api.url + "/apis", timeout=5).json()["groups"]}
    assert {"apps", "coordination.k8s.io", "storage.k8s.io"} <= groups
    res = {r["name"]: r for r in requests.get(api.url + "/api/v1", timeout=5).json()["resources"]}
    assert res["pods"]["shortNames"] == ["po"] and "pods/log" in res and "pods/binding" in res
    apps = {r["name"] for r in requests.get(api.url + "/apis/apps/v1", timeout=5).json()["resources"]}
    assert "deployments/scale" in apps
    for v in ("v2", "v2beta1"):
        ct = f"application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList"
        r = requests.get(api.url + "/apis", headers={"Accept": ct + ",application/json"}, timeout=5)
        assert r.headers["Content-Type"] == ct and r.json()["apiVersion"] == f"apidiscovery.k8s.io/{v}"
    root = requests.get(api.url + "/openapi/v3", timeout=5).json()
    doc = requests.get(api.url + root["paths"]["apis/apps/v1"]["serverRelativeURL"], timeout=5).json()
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"]["kind"] == "Deployment"
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]


def test_wrong_json_types_are_400_like_go_decoding(api, ns):
    body = pod("typed")
    body["spec"]["containers"][0]["ports"] = [{"containerPort": "80"}]
    r = requests.post(f"{api.url}/api/v1/namespaces/{ns}/pods", json=body, timeout=10)
    assert r.status_code == 400 and "cannot unmarshal string" in r.json()["message"]
    body = pod("qty")
    body["spec"]["containers"][0]["resources"] = {"limits": {"memory": "lots"}}
    r = requests.post(f"{api.url}/api/v1/namespaces/{ns}/pods", json=body, timeout=10)
    assert r.status_code == 400 and "quantities must match" in r.json()["message"]


def test_strict_validation_sees_nested_unknown_fields(api, ns):
    body = deployment("strict")
    body["spec"]["template"]["spec"]["containers"][0]["imagePolicy"] = "x"
    r = requests.post(f"{api.url}/apis/apps/v1/namespaces/{ns}/deployments", json=body,
                      params={"fieldValidation": "Strict"}, timeout=10)
    assert r.status_code == 400
    assert 'unknown field "spec.template.spec.containers[0].imagePolicy"' in r.json()["message"]


def test_type_confusion_never_gives_a_5xx(api, ns):
    import random

    rnd = random.Random(4)
    values = [None, 1, "x", [], {}, [1], {"a": 1}, True, -5, "Bad Name", [{"name": "c"}], 1.5]
    paths = [("metadata",), ("metadata", "labels"), ("metadata", "finalizers"), ("spec",), ("spec", "containers"),
             ("spec", "selector"), ("spec", "template"), ("spec", "template", "spec"), ("spec", "replicas"),
             ("spec", "ports"), ("data",), ("status",), ("metadata", "ownerReferences")]
    urls = [f"/api/v1/namespaces/{ns}/pods", f"/apis/apps/v1/namespaces/{ns}/deployments",
            f"/api/v1/namespaces/{ns}/services", f"/api/v1/namespaces/{ns}/configmaps", "/api/v1/nodes"]
    for i in range(150):
        body = deployment(f"fz{i}")
        body.pop("kind")
        body.pop("apiVersion")
        for _ in range(rnd.randint(1, 3)):
            path = rnd.choice(paths)
            cur = body
            for p in path[:-1]:
                cur = cur.setdefault(p, {}) if isinstance(cur, dict) else {}
            if isinstance(cur, dict):
                cur[path[-1]] = json.loads(json.dumps(rnd.choice(values)))
        url = api.url + rnd.choice(urls)
        r = requests.post(url, json=body, timeout=10)
        assert r.status_code < 500, r.text
        for ct in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            r = requests.patch(f"{url}/fz{i}", data=json.dumps(body), headers={"Content-Type": ct}, timeout=10)
            assert r.status_code < 500, r.text


def test_apply_patch_needs_a_field_manager(api, ns):
    r = requests.patch(f"{api.url}/api/v1/namespaces/{ns}/configmaps/ssa", data="metadata: {name: ssa}\n",
                       headers={"Content-Type": "application/apply-patch+yaml"}, timeout=10)
    assert r.status_code == 400 and "fieldManager" in r.json()["message"]
    r = requests.patch(f"{api.url}/api/v1/namespaces/{ns}/configmaps/ssa", params={"fieldManager": "me"},
                       data="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa}\ndata: {a: b}\n",
                       headers={"Content-Type": "application/apply-patch+yaml"}, timeout=10)
    assert r.status_code == 201 and r.json()["data"] == {"a": "b"}


def test_server_side_apply_removes_what_the_manager_stopped_applying(api, ns):
    url = f"{api.url}/api/v1/namespaces/{ns}/configmaps/owned"

    def ssa(data: dict, manager: str = "me") -> dict:
        body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owned"}, "data": data})
        r = requests.patch(url, params={"fieldManager": manager}, data=body,
                           headers={"Content-Type": "application/apply-patch+yaml"}, timeout=10)
        assert r.status_code in (200, 201), r.text
        return r.json()
    ssa({"a": "1", "b": "2"})
    requests.patch(url, json={"data": {"c": "3"}}, headers={"Content-Type": "application/merge-patch+json"},
                   timeout=10)  # someone else's field
    out = ssa({"a": "1"})
    assert out["data"] == {"a": "1", "c": "3"}
    assert out["metadata"]["managedFields"][0]["fieldsV1"] == {"f:data": {"f:a": {}}}


def test_request_above_limit_and_immutable_configmaps(api, ns):
    body = pod("greedy")
    body["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "2"}, "limits": {"cpu": "500m"}}
    r = requests.post(f"{api.url}/api/v1/namespaces/{ns}/pods", json=body, timeout=10)
    assert r.status_code == 422 and "must be less than or equal to cpu limit" in r.json()["message"]
    url = f"{api.url}/api/v1/namespaces/{ns}/configmaps"
    assert requests.post(url, json={"metadata": {"name": "frozen"}, "data": {"a": "1"}, "immutable": True},
                         timeout=10).status_code == 201
    r = requests.patch(f"{url}/frozen", data=json.dumps({"data": {"a": "2"}}), timeout=10,
                       headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 422 and "immutable" in r.json()["message"]
    r = requests.patch(f"{url}/frozen", data=json.dumps({"metadata": {"labels": {"ok": "yes"}}}), timeout=10,
                       headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200  # metadata may still change
