"""The same API behaviour on every store backend: memory, sqlite and real etcd (when installed)."""

from __future__ import annotations

import json
import shutil

import pytest
import requests
from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from support.apiserver import deployment, pod

from labkit.controlplane.apiserver import APIServer


@pytest.fixture(scope="module", params=["memory", "sqlite", "etcd"])
def server(request, tmp_path_factory):
    if request.param == "etcd":
        if shutil.which("etcd") is None:
            pytest.skip("etcd is not installed (apt-get install etcd-server)")
        from labkit.controlplane.store.etcd_server import EtcdCluster

        cluster = EtcdCluster(members=1)
        cluster.start()
        url = cluster.url
    else:
        cluster = None
        url = "memory" if request.param == "memory" else f"sqlite:{tmp_path_factory.mktemp('api') / 'store.db'}"
    try:
        with APIServer(url, compact_interval=None) as api:
            yield api
    finally:
        if cluster is not None:
            cluster.stop()


def _core(api):
    cfg = client.Configuration()
    cfg.host = api.url
    k = client.ApiClient(cfg)
    return client.CoreV1Api(k), client.AppsV1Api(k)


def test_crud_watch_conflict_and_compaction(server):
    core, apps = _core(server)
    rv0 = core.list_namespaced_pod("default").metadata.resource_version
    core.create_namespaced_pod("default", pod("s1", {"app": "s"}))
    apps.create_namespaced_deployment("default", deployment("sd"))
    p = core.patch_namespaced_pod("s1", "default", {"metadata": {"labels": {"x": "y"}}})
    stale = core.read_namespaced_pod("s1", "default")
    core.patch_namespaced_pod("s1", "default", {"metadata": {"labels": {"x": "z"}}})
    with pytest.raises(ApiException) as e:
        core.replace_namespaced_pod("s1", "default", stale)
    assert e.value.status == 409
    assert apps.patch_namespaced_deployment_scale("sd", "default", {"spec": {"replicas": 4}}).spec.replicas == 4
    core.delete_namespaced_pod("s1", "default")
    events = [(ev["type"], ev["object"].metadata.name) for ev in watch.Watch().stream(
        core.list_namespaced_pod, "default", resource_version=rv0, timeout_seconds=1)]
    assert events == [("ADDED", "s1"), ("MODIFIED", "s1"), ("MODIFIED", "s1"), ("DELETED", "s1")]
    assert int(p.metadata.resource_version) > int(rv0)
    server.compact()
    r = requests.get(f"{server.url}/api/v1/namespaces/default/pods",
                     params={"watch": "1", "resourceVersion": rv0, "timeoutSeconds": "1"}, timeout=10)
    assert json.loads(r.text.splitlines()[0])["object"]["reason"] == "Expired"


def test_paginated_list_and_selectors(server):
    core, _ = _core(server)
    for i in range(5):
        core.create_namespaced_config_map("default", {"metadata": {"name": f"pg{i}", "labels": {"i": str(i % 2)}}})
    names, token = [], None
    while True:
        page = core.list_namespaced_config_map("default", limit=2, _continue=token, label_selector="i=0")
        names += [c.metadata.name for c in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert names == ["pg0", "pg2", "pg4"]
