"""Unit tests of the apiserver's building blocks: selectors, patches, printing, protobuf."""

from __future__ import annotations

import pytest

from labkit.controlplane.apiserver import protobuf, tables
from labkit.controlplane.apiserver.errors import StatusError
from labkit.controlplane.apiserver.patch import json_patch, merge_patch, strategic_merge_patch
from labkit.controlplane.apiserver.protowire import field_bytes, field_str, field_varint
from labkit.controlplane.apiserver.resources import BY_PLURAL
from labkit.controlplane.apiserver.selectors import FieldSelector, LabelSelector


@pytest.mark.parametrize("sel,labels,want", [
    ("app=web", {"app": "web"}, True),
    ("app==web", {"app": "db"}, False),
    ("app!=web", {}, True),
    ("app!=web", {"app": "web"}, False),
    ("tier in (a,b),app", {"tier": "b", "app": "x"}, True),
    ("tier notin (a,b)", {"tier": "a"}, False),
    ("tier notin (a,b)", {}, True),
    ("!gpu", {"gpu": "1"}, False),
    ("!gpu", {"app": "x"}, True),
    ("", {"anything": "x"}, True),
])
def test_label_selectors_follow_kubernetes_semantics(sel, labels, want):
    assert LabelSelector.parse(sel).matches(labels) is want


def test_bad_label_selector_is_a_400():
    with pytest.raises(StatusError) as e:
        LabelSelector.parse("a b c")
    assert e.value.code == 400


def test_field_selector_on_unsupported_field_is_a_400():
    getters = BY_PLURAL["pods"].field_getters
    assert FieldSelector.parse("spec.nodeName=n1,status.phase!=Failed", getters).matches(
        {"spec.nodeName": "n1", "status.phase": "Running"})
    with pytest.raises(StatusError) as e:
        FieldSelector.parse("spec.image=x", getters)
    assert e.value.code == 400 and "field label not supported" in e.value.message


def test_merge_patch_deletes_with_null_and_replaces_lists():
    doc = {"a": {"b": 1, "c": 2}, "l": [1, 2]}
    assert merge_patch(doc, {"a": {"b": None, "d": 3}, "l": [3]}) == {"a": {"c": 2, "d": 3}, "l": [3]}


def test_strategic_merge_merges_containers_by_name_and_honours_directives():
    spec = {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}
    patch = {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
             "containers": [{"name": "a", "image": "a:2"}]}
    out = strategic_merge_patch(spec, patch)
    assert out == {"containers": [{"name": "b", "image": "b:1"}, {"name": "a", "image": "a:2"}]}
    out = strategic_merge_patch(spec, {"containers": [{"name": "b", "$patch": "delete"}]})
    assert [c["name"] for c in out["containers"]] == ["a"]
    meta = strategic_merge_patch({"finalizers": ["x"]}, {"finalizers": ["y"]})
    assert meta == {"finalizers": ["x", "y"]}


def test_json_patch_operations():
    doc = {"spec": {"replicas": 1, "list": [1, 2]}}
    out = json_patch(doc, [{"op": "replace", "path": "/spec/replicas", "value": 3},
                           {"op": "add", "path": "/spec/list/-", "value": 9},
                           {"op": "remove", "path": "/spec/list/0"},
                           {"op": "test", "path": "/spec/replicas", "value": 3}])
    assert out == {"spec": {"replicas": 3, "list": [2, 9]}}
    with pytest.raises(StatusError):
        json_patch(doc, [{"op": "test", "path": "/spec/replicas", "value": 7}])


@pytest.mark.parametrize("secs,text", [(5, "5s"), (119, "119s"), (185, "3m5s"), (600, "10m"), (3 * 3600 + 60, "3h1m"),
                                       (30 * 3600, "30h"), (3 * 86400 + 7200, "3d2h"), (40 * 86400, "40d")])
def test_age_column_matches_kubectl(secs, text):
    assert tables.human_duration(secs) == text


def test_pod_status_column():
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
           "status": {"phase": "Running", "containerStatuses": [
               {"name": "a", "ready": True, "restartCount": 2, "state": {"running": {}}},
               {"name": "b", "ready": False, "restartCount": 1, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}
    assert tables.pod_status(pod) == ("CrashLoopBackOff", 1, 2, 3)
    pod["metadata"]["deletionTimestamp"] = "2020-01-01T00:00:00Z"
    assert tables.pod_status(pod)[0] == "Terminating"


def test_protobuf_envelope_decodes_a_deployment():
    meta = field_str(1, "web") + field_bytes(11, field_str(1, "app") + field_str(2, "web"))
    container = field_str(1, "nginx") + field_str(2, "nginx:1.25") + field_bytes(6, field_varint(3, 80))
    tmpl = field_bytes(1, field_bytes(11, field_str(1, "app") + field_str(2, "web"))) + \
        field_bytes(2, field_bytes(2, container) + field_str(3, ""))
    spec = field_varint(1, 3) + field_bytes(2, field_bytes(1, field_str(1, "app") + field_str(2, "web"))) + \
        field_bytes(3, tmpl)
    obj = field_bytes(1, meta) + field_bytes(2, spec) + field_bytes(3, b"")
    body = b"k8s\x00" + field_bytes(1, field_str(1, "apps/v1") + field_str(2, "Deployment")) + field_bytes(2, obj)
    out = protobuf.decode_request(body, BY_PLURAL["deployments"])
    assert out["kind"] == "Deployment" and out["metadata"] == {"name": "web", "labels": {"app": "web"}}
    assert out["spec"]["replicas"] == 3
    assert out["spec"]["template"]["spec"]["containers"] == [
        {"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]
    assert "restartPolicy" not in out["spec"]["template"]["spec"]  # zero-valued strings are omitted


def test_protobuf_garbage_is_a_400_and_unknown_kind_a_415():
    with pytest.raises(StatusError) as e:
        protobuf.decode_request(b"k8s\x00\x0a\xff\xff", BY_PLURAL["pods"])
    assert e.value.code == 400
    body = b"k8s\x00" + field_bytes(1, field_str(1, "policy/v1") + field_str(2, "PodDisruptionBudget")) + field_bytes(2, b"")
    with pytest.raises(StatusError) as e:
        protobuf.decode_request(body, BY_PLURAL["pods"])
    assert e.value.code == 415


def test_an_unavailable_store_is_a_503_not_a_500():
    import requests

    from labkit.controlplane.apiserver import APIServer
    from labkit.controlplane.store import Unavailable, open_store

    store = open_store("memory")
    with APIServer(store, compact_interval=None) as api:
        real_get, real_update = store.get, store.update

        def down(*a, **k):
            raise Unavailable("etcd has no quorum (test)")
        store.get = down  # type: ignore[method-assign]
        store.update = down  # type: ignore[method-assign]
        try:
            r = requests.get(f"{api.url}/api/v1/namespaces/default", timeout=5)
            assert r.status_code == 503 and r.json()["reason"] == "ServiceUnavailable"
            r = requests.post(f"{api.url}/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "x"}},
                              timeout=5)
            assert r.status_code < 500 or r.status_code == 503
        finally:
            store.get, store.update = real_get, real_update  # type: ignore[method-assign]
