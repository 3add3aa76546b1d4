"""CustomResourceDefinitions: a kind served as soon as its CRD is written, checked by its schema.

Against an apiserver alone (no kubelets): the official Python client, raw HTTP for discovery and
OpenAPI, and real kubectl 1.30 and 1.33 for apply, get by short name, api-resources and explain.
"""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
import requests
from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from support.apiserver import kubeconfig, kubectls
from support.crds import crontab, crontab_crd


@pytest.fixture()
def group(kc):
    """A fresh group with the CronTab CRD in it; the CRD is deleted afterwards."""
    name = f"t{uuid.uuid4().hex[:6]}.example.com"
    ext = client.ApiextensionsV1Api(kc)
    ext.create_custom_resource_definition(crontab_crd(name))
    yield name
    try:
        ext.delete_custom_resource_definition(f"crontabs.{name}")
    except ApiException as exc:
        assert exc.status == 404


def objects(kc):
    return client.CustomObjectsApi(kc)


def test_crd_is_established_and_listed(kc, group):
    ext = client.ApiextensionsV1Api(kc)
    crd = ext.read_custom_resource_definition(f"crontabs.{group}")
    conditions = {c.type: c.status for c in crd.status.conditions}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert crd.status.accepted_names.short_names == ["ct"]
    assert crd.status.stored_versions == ["v1"]
    # what kubectl does before applying a kind it does not know ("failed to list CRDs" before)
    names = [c.metadata.name for c in ext.list_custom_resource_definition().items]
    assert f"crontabs.{group}" in names


def test_discovery_plain_and_aggregated(api, group):
    plain = requests.get(f"{api.url}/apis/{group}/v1", timeout=10).json()
    entry = next(r for r in plain["resources"] if r["name"] == "crontabs")
    assert entry["kind"] == "CronTab" and entry["namespaced"] and entry["shortNames"] == ["ct"]
    assert entry["singularName"] == "crontab" and entry["categories"] == ["all"]
    assert any(r["name"] == "crontabs/status" for r in plain["resources"])
    groups = requests.get(f"{api.url}/apis", timeout=10).json()["groups"]
    assert {"name": group, "versions": [{"groupVersion": f"{group}/v1", "version": "v1"}],
            "preferredVersion": {"groupVersion": f"{group}/v1", "version": "v1"}} in groups
    agg = requests.get(f"{api.url}/apis", timeout=10, headers={
        "Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"}).json()
    item = next(i for i in agg["items"] if i["metadata"].get("name") == group)
    res = item["versions"][0]["resources"][0]
    assert res["resource"] == "crontabs" and res["scope"] == "Namespaced"
    assert res["subresources"][0]["subresource"] == "status"
    paths = requests.get(f"{api.url}/openapi/v3", timeout=10).json()["paths"]
    doc = requests.get(api.url + paths[f"apis/{group}/v1"]["serverRelativeURL"], timeout=10).json()
    schema = next(s for s in doc["components"]["schemas"].values()
                  if s.get("x-kubernetes-group-version-kind", [{}])[0].get("group") == group)
    assert schema["properties"]["spec"]["properties"]["replicas"]["maximum"] == 10


def test_good_instance_is_defaulted_and_unknown_fields_pruned(kc, ns, group):
    body = crontab(group, "good", unknown=1, extra={"kept": {"deep": True}}, labels={"a": "b"})
    body["topLevelJunk"] = "x"
    body["metadata"]["notAMetaField"] = "y"
    created = objects(kc).create_namespaced_custom_object(group, "v1", ns, "crontabs", body)
    assert created["spec"]["replicas"] == 1  # the schema's default
    assert "unknown" not in created["spec"] and "topLevelJunk" not in created
    assert "notAMetaField" not in created["metadata"]
    assert created["spec"]["extra"] == {"kept": {"deep": True}}  # x-kubernetes-preserve-unknown-fields
    assert created["metadata"]["generation"] == 1
    got = objects(kc).get_namespaced_custom_object(group, "v1", ns, "crontabs", "good")
    assert got["spec"] == created["spec"]


def test_bad_instance_refused_with_causes(kc, ns, group):
    bad = crontab(group, "bad", cronSpec="* * * *", image=42, replicas=15, mode="medium")
    with pytest.raises(ApiException) as err:
        objects(kc).create_namespaced_custom_object(group, "v1", ns, "crontabs", bad)
    status = json.loads(err.value.body)
    assert err.value.status == 422 and status["reason"] == "Invalid"
    assert status["message"].startswith('CronTab.' + group + ' "bad" is invalid: [')
    causes = {c["field"]: (c["reason"], c["message"]) for c in status["details"]["causes"]}
    assert causes["spec.image"] == ("FieldValueTypeInvalid",
                                    'Invalid value: "integer": spec.image in body must be of type string: "integer"')
    assert causes["spec.replicas"] == ("FieldValueInvalid", "Invalid value: 15: spec.replicas in body should be "
                                                            "less than or equal to 10")
    assert causes["spec.mode"] == ("FieldValueNotSupported",
                                   'Unsupported value: "medium": supported values: "fast", "slow"')
    assert causes["spec.cronSpec"][1].startswith('Invalid value: "* * * *": spec.cronSpec in body should match')
    missing = crontab(group, "missing")
    del missing["spec"]["image"]
    with pytest.raises(ApiException) as err:
        objects(kc).create_namespaced_custom_object(group, "v1", ns, "crontabs", missing)
    assert json.loads(err.value.body)["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.image"}]


def test_status_subresource(kc, ns, group):
    api = objects(kc)
    body = crontab(group, "st")
    body["status"] = {"ready": True}
    created = api.create_namespaced_custom_object(group, "v1", ns, "crontabs", body)
    assert "status" not in created  # status is written through /status only
    # a write to the main resource ignores status
    main = api.patch_namespaced_custom_object(group, "v1", ns, "crontabs", "st",
                                              {"spec": {"replicas": 2}, "status": {"ready": True}})
    assert main["spec"]["replicas"] == 2 and "status" not in main and main["metadata"]["generation"] == 2
    # a write to /status ignores everything else, and does not bump the generation
    st = api.patch_namespaced_custom_object_status(group, "v1", ns, "crontabs", "st",
                                                   {"spec": {"replicas": 9}, "status": {"ready": True, "runs": 3}})
    assert st["status"] == {"ready": True, "runs": 3} and st["spec"]["replicas"] == 2
    assert st["metadata"]["generation"] == 2
    with pytest.raises(ApiException) as err:  # status is checked by the schema too
        api.patch_namespaced_custom_object_status(group, "v1", ns, "crontabs", "st", {"status": {"runs": "many"}})
    assert err.value.status == 422


def test_patch_types_and_watch(kc, ns, group):
    api = objects(kc)
    created = api.create_namespaced_custom_object(group, "v1", ns, "crontabs", crontab(group, "w"))
    url = f"{kc.configuration.host}/apis/{group}/v1/namespaces/{ns}/crontabs/w"
    r = requests.patch(url, timeout=10, data='[{"op": "replace", "path": "/spec/replicas", "value": 4}]',
                       headers={"Content-Type": "application/json-patch+json"})
    assert r.status_code == 200 and r.json()["spec"]["replicas"] == 4
    api.patch_namespaced_custom_object(group, "v1", ns, "crontabs", "w", {"spec": {"replicas": 5}})
    r = requests.patch(url, timeout=10, data='{"spec":{"replicas":6}}',
                       headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert r.status_code == 415 and "application/merge-patch+json" in r.json()["message"]
    seen = []
    w = watch.Watch()
    for ev in w.stream(api.list_namespaced_custom_object, group, "v1", ns, "crontabs", timeout_seconds=10,
                       resource_version=created["metadata"]["resourceVersion"]):
        seen.append((ev["type"], ev["object"]["spec"]["replicas"]))
        if len(seen) == 2:
            w.stop()
    assert seen == [("MODIFIED", 4), ("MODIFIED", 5)]


def test_deleting_the_crd_removes_instances_and_the_kind(api, kc, ns, group):
    api_ = objects(kc)
    api_.create_namespaced_custom_object(group, "v1", ns, "crontabs", crontab(group, "gone"))
    client.ApiextensionsV1Api(kc).delete_custom_resource_definition(f"crontabs.{group}")
    r = requests.get(f"{api.url}/apis/{group}/v1/namespaces/{ns}/crontabs", timeout=10)
    assert r.status_code == 404
    assert group not in {g["name"] for g in requests.get(f"{api.url}/apis", timeout=10).json()["groups"]}
    client.ApiextensionsV1Api(kc).create_custom_resource_definition(crontab_crd(group))
    assert api_.list_namespaced_custom_object(group, "v1", ns, "crontabs")["items"] == []


def test_invalid_crd_refused(kc):
    crd = crontab_crd("example.com")
    crd["metadata"]["name"] = "wrong.example.com"
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["x"] = {}
    with pytest.raises(ApiException) as err:
        client.ApiextensionsV1Api(kc).create_custom_resource_definition(crd)
    fields = {c["field"] for c in json.loads(err.value.body)["details"]["causes"]}
    assert fields == {"metadata.name", "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[x].type"}


@pytest.mark.parametrize("binary", kubectls(("1.30", "1.33")))
def test_kubectl_apply_get_short_name_explain(api, binary, tmp_path):
    group = f"k{uuid.uuid4().hex[:6]}.example.com"
    cfg = kubeconfig(tmp_path / "kubeconfig", api.url)

    def kubectl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run([binary, "--kubeconfig", str(cfg), *args], capture_output=True, text=True, timeout=60)
        if check and p.returncode:
            raise AssertionError(f"kubectl {' '.join(args)}: {p.stderr}")
        return p
    (tmp_path / "crd.json").write_text(json.dumps(crontab_crd(group)))
    (tmp_path / "good.json").write_text(json.dumps(crontab(group, "nightly")))
    (tmp_path / "bad.json").write_text(json.dumps(crontab(group, "broken", replicas=15)))
    try:
        assert "created" in kubectl("apply", "-f", str(tmp_path / "crd.json")).stdout
        kubectl("wait", "--for", "condition=established", f"crd/crontabs.{group}")
        assert f"crontab.{group}/nightly created" in kubectl("apply", "-f", str(tmp_path / "good.json")).stdout
        assert "unchanged" in kubectl("apply", "-f", str(tmp_path / "good.json")).stdout
        table = [line.split() for line in kubectl("get", "ct").stdout.splitlines()]
        assert table[0] == ["NAME", "REPLICAS", "READY", "AGE"]  # additionalPrinterColumns
        assert table[1][:2] == ["nightly", "1"] and len(table[1]) == 3  # no status yet: READY is blank
        assert kubectl("get", "ct", "-o", "wide").stdout.split()[:5] == ["NAME", "REPLICAS", "READY", "IMAGE", "AGE"]
        assert "nightly" in kubectl("get", f"crontabs.{group}", "-o", "name").stdout
        bad = kubectl("apply", "-f", str(tmp_path / "bad.json"), check=False)
        assert bad.returncode != 0
        assert "spec.replicas: Invalid value: 15: spec.replicas in body should be less than or equal to 10" \
            in bad.stderr
        rows = [line.split() for line in kubectl("api-resources", "--api-group", group).stdout.splitlines()]
        assert ["crontabs", "ct", f"{group}/v1", "true", "CronTab"] in rows
        explained = kubectl("explain", "ct.spec.replicas").stdout
        assert "FIELD: replicas <integer>" in explained or "replicas\t<integer>" in explained
        assert f"crontabs.{group}" in kubectl("get", "crd").stdout
        # a kind nobody serves: kubectl now asks for CRDs and says so (it said "failed to list CRDs")
        (tmp_path / "pdb.json").write_text(json.dumps({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                                                       "metadata": {"name": "x"}, "spec": {"minAvailable": 1}}))
        unserved = kubectl("apply", "-f", str(tmp_path / "pdb.json"), check=False)
        assert 'no matches for kind "PodDisruptionBudget"' in unserved.stderr
        assert "failed to list CRDs" not in unserved.stderr
        assert "deleted" in kubectl("delete", "ct", "--all", "-n", "default").stdout
    finally:
        kubectl("delete", "crd", f"crontabs.{group}", check=False)


def test_printer_column_paths():
    from labkit.controlplane.apiserver.printercolumns import json_path

    obj = {"status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]},
           "spec": {"ports": [{"port": 80}]}}
    assert json_path(obj, '.status.conditions[?(@.type=="Ready")].status') == "True"
    assert json_path(obj, ".spec.ports[0].port") == 80
    assert json_path(obj, ".spec.missing.deeper") is None


def test_two_versions_preferred_is_the_highest(api, kc):
    group = f"v{uuid.uuid4().hex[:6]}.example.com"
    crd = crontab_crd(group)
    beta = json.loads(json.dumps(crd["spec"]["versions"][0]))
    beta.update(name="v1beta1", storage=False)
    crd["spec"]["versions"].insert(0, beta)
    ext = client.ApiextensionsV1Api(kc)
    ext.create_custom_resource_definition(crd)
    try:
        found = next(g for g in requests.get(f"{api.url}/apis", timeout=10).json()["groups"] if g["name"] == group)
        assert [v["version"] for v in found["versions"]] == ["v1", "v1beta1"]
        assert found["preferredVersion"]["version"] == "v1"
        assert requests.get(f"{api.url}/apis/{group}/v1beta1/crontabs", timeout=10).json()["items"] == []
    finally:
        ext.delete_custom_resource_definition(f"crontabs.{group}")


def test_cluster_scoped_kind_without_status_subresource(api, kc):
    group = f"c{uuid.uuid4().hex[:6]}.example.com"
    crd = crontab_crd(group, plural="clustertabs", kind="ClusterTab", short="clt", status=False)
    crd["spec"]["scope"] = "Cluster"
    ext = client.ApiextensionsV1Api(kc)
    ext.create_custom_resource_definition(crd)
    try:
        body = {**crontab(group, "one"), "kind": "ClusterTab", "status": {"ready": True}}
        made = objects(kc).create_cluster_custom_object(group, "v1", "clustertabs", body)
        assert made["status"] == {"ready": True} and "namespace" not in made["metadata"]  # status is plain data
        assert [o["metadata"]["name"] for o in
                objects(kc).list_cluster_custom_object(group, "v1", "clustertabs")["items"]] == ["one"]
        assert requests.get(f"{api.url}/apis/{group}/v1/namespaces/default/clustertabs", timeout=10).status_code == 404
        assert requests.get(f"{api.url}/apis/{group}/v1/clustertabs/one/status", timeout=10).status_code == 404
    finally:
        ext.delete_custom_resource_definition(f"clustertabs.{group}")


def test_deleting_a_namespace_deletes_its_custom_objects(api, kc, group):
    core = client.CoreV1Api(kc)
    name = "t-" + uuid.uuid4().hex[:8]
    core.create_namespace({"metadata": {"name": name}})
    objects(kc).create_namespaced_custom_object(group, "v1", name, "crontabs", crontab(group, "inside"))
    core.delete_namespace(name)
    core.create_namespace({"metadata": {"name": name}})
    try:
        assert objects(kc).list_namespaced_custom_object(group, "v1", name, "crontabs")["items"] == []
    finally:
        core.delete_namespace(name)
