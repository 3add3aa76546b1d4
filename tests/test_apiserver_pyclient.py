"""The official ``kubernetes`` Python client against labkit's apiserver, on every resource served."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests
from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from support.apiserver import deployment, pod
from support.cluster import wait_for

# (API class, method suffix, namespaced, body factory)
RESOURCES = [
    (client.CoreV1Api, "namespace", False, lambda n: {"metadata": {"name": n}}),
    (client.CoreV1Api, "pod", True, lambda n: pod(n)),
    (client.CoreV1Api, "node", False, lambda n: {"metadata": {"name": n}}),
    (client.CoreV1Api, "event", True, lambda n: {"metadata": {"name": n}, "reason": "Test", "message": "hello",
                                                 "involvedObject": {"kind": "Pod", "name": "x"}}),
    (client.CoreV1Api, "service", True, lambda n: {"metadata": {"name": n}, "spec": {"ports": [{"port": 80}]}}),
    (client.CoreV1Api, "endpoints", True, lambda n: {"metadata": {"name": n}, "subsets": []}),
    (client.CoreV1Api, "config_map", True, lambda n: {"metadata": {"name": n}, "data": {"k": "v"}}),
    (client.CoreV1Api, "secret", True, lambda n: {"metadata": {"name": n}, "stringData": {"k": "v"}}),
    (client.CoreV1Api, "service_account", True, lambda n: {"metadata": {"name": n}}),
    (client.CoreV1Api, "persistent_volume", False, lambda n: {"metadata": {"name": n}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/tmp/x"}}}),
    (client.CoreV1Api, "persistent_volume_claim", True, lambda n: {"metadata": {"name": n}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
    (client.AppsV1Api, "deployment", True, lambda n: deployment(n)),
    (client.AppsV1Api, "replica_set", True, lambda n: {**deployment(n), "kind": "ReplicaSet"}),
    (client.CoordinationV1Api, "lease", True, lambda n: {"metadata": {"name": n}, "spec": {"holderIdentity": "me"}}),
    (client.StorageV1Api, "storage_class", False, lambda n: {"metadata": {"name": n}, "provisioner": "labkit/csi"}),
]


@pytest.mark.parametrize("api_cls,suffix,namespaced,body", RESOURCES, ids=[r[1] for r in RESOURCES])
def test_crud_list_watch_on_every_resource(kc, ns, api_cls, suffix, namespaced, body):
    a = api_cls(kc)
    name = f"obj-{suffix.replace('_', '-')}-{ns[-4:]}"
    scope = "namespaced_" if namespaced else ""
    nsarg = (ns,) if namespaced else ()
    call = lambda verb, *args, **kw: getattr(a, f"{verb}_{scope}{suffix}")(*args, **kw)  # noqa: E731
    rv0 = call("list", *nsarg).metadata.resource_version
    created = call("create", *nsarg, body(name))
    assert created.metadata.uid and created.metadata.creation_timestamp
    assert int(created.metadata.resource_version) > int(rv0)
    got = call("read", name, *nsarg)
    assert got.metadata.name == name
    assert name in [o.metadata.name for o in call("list", *nsarg).items]
    patched = call("patch", name, *nsarg, {"metadata": {"labels": {"patched": "yes"}}})
    assert patched.metadata.labels["patched"] == "yes"
    assert int(patched.metadata.resource_version) > int(created.metadata.resource_version)
    patched.metadata.annotations = {"replaced": "yes"}
    replaced = call("replace", name, *nsarg, patched)
    assert replaced.metadata.annotations == {"replaced": "yes"}
    assert name in [o.metadata.name for o in call("list", *nsarg, label_selector="patched=yes").items]
    call("delete", name, *nsarg)
    with pytest.raises(ApiException) as e:
        call("read", name, *nsarg)
    assert e.value.status == 404
    events = [(ev["type"], ev["object"].metadata.name) for ev in
              watch.Watch().stream(getattr(a, f"list_{scope}{suffix}"), *nsarg, resource_version=rv0,
                                   timeout_seconds=1)
              if ev["object"].metadata.name == name]
    assert events == [("ADDED", name), ("MODIFIED", name), ("MODIFIED", name), ("DELETED", name)]


def test_defaults_are_filled_in(kc, ns):
    core, apps = client.CoreV1Api(kc), client.AppsV1Api(kc)
    p = core.create_namespaced_pod(ns, pod("d1", image="busybox"))
    assert (p.spec.restart_policy, p.spec.dns_policy, p.spec.termination_grace_period_seconds) == \
        ("Always", "ClusterFirst", 30)
    c = p.spec.containers[0]
    assert c.image_pull_policy == "Always" and c.termination_message_path == "/dev/termination-log"
    assert p.status.phase == "Pending" and p.status.qos_class == "BestEffort"
    body = deployment("d2")
    del body["spec"]["replicas"]
    d = apps.create_namespaced_deployment(ns, body)
    assert d.spec.replicas == 1 and d.spec.revision_history_limit == 10 and d.spec.progress_deadline_seconds == 600
    assert d.spec.strategy.type == "RollingUpdate"
    assert (d.spec.strategy.rolling_update.max_surge, d.spec.strategy.rolling_update.max_unavailable) == ("25%", "25%")
    assert d.metadata.generation == 1
    s = core.create_namespaced_service(ns, {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}})
    assert s.spec.type == "ClusterIP" and s.spec.cluster_ip and s.spec.ports[0].target_port == 80
    names = [n.metadata.name for n in core.list_namespace().items]
    assert "default" in names and "kube-system" in names


def test_generation_moves_with_spec_only_and_status_is_separate(kc, ns):
    apps = client.AppsV1Api(kc)
    apps.create_namespaced_deployment(ns, deployment("g"))
    d = apps.patch_namespaced_deployment("g", ns, {"metadata": {"labels": {"x": "y"}}})
    assert d.metadata.generation == 1
    d = apps.patch_namespaced_deployment("g", ns, {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "nginx:1.26"}]}}}})
    assert d.metadata.generation == 2
    d = apps.patch_namespaced_deployment_status("g", ns, {"status": {"replicas": 2, "observedGeneration": 2}})
    assert d.status.replicas == 2 and d.spec.template.spec.containers[0].image == "nginx:1.26"
    d = apps.patch_namespaced_deployment("g", ns, {"status": {"replicas": 99}})  # ignored on the main resource
    assert d.status.replicas == 2


def test_scale_subresource(kc, ns):
    apps = client.AppsV1Api(kc)
    apps.create_namespaced_deployment(ns, deployment("sc", replicas=2))
    s = apps.read_namespaced_deployment_scale("sc", ns)
    assert s.spec.replicas == 2 and s.status.selector == "app=sc"
    s = apps.patch_namespaced_deployment_scale("sc", ns, {"spec": {"replicas": 5}})
    assert s.spec.replicas == 5
    s.spec.replicas = 3
    assert apps.replace_namespaced_deployment_scale("sc", ns, s).spec.replicas == 3
    assert apps.read_namespaced_deployment("sc", ns).spec.replicas == 3
    s.spec.replicas = 4  # stale resourceVersion
    with pytest.raises(ApiException) as e:
        apps.replace_namespaced_deployment_scale("sc", ns, s)
    assert e.value.status == 409
    with pytest.raises(ApiException) as e:
        apps.patch_namespaced_deployment_scale("sc", ns, {"spec": {"replicas": -1}})
    assert e.value.status == 422


def test_binding_and_watch_by_node_name(kc, ns):
    core = client.CoreV1Api(kc)
    core.create_node({"metadata": {"name": f"node-{ns}"}})
    rv = core.list_namespaced_pod(ns).metadata.resource_version
    core.create_namespaced_pod(ns, pod("b1"))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "b1"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": f"node-{ns}"}}
    core.create_namespaced_pod_binding("b1", ns, binding, _preload_content=False)
    p = core.read_namespaced_pod("b1", ns)
    assert p.spec.node_name == f"node-{ns}"
    assert any(c.type == "PodScheduled" and c.status == "True" for c in p.status.conditions)
    with pytest.raises(ApiException) as e:
        core.create_namespaced_pod_binding("b1", ns, binding, _preload_content=False)
    assert e.value.status == 409
    # a kubelet's watch: the pod "appears" on its node when it is bound
    events = [(ev["type"], ev["object"].metadata.name) for ev in watch.Watch().stream(
        core.list_namespaced_pod, ns, field_selector=f"spec.nodeName=node-{ns}", resource_version=rv,
        timeout_seconds=1)]
    assert events == [("ADDED", "b1")]
    core.delete_node(f"node-{ns}")


def test_graceful_delete_of_a_running_pod(kc, ns):
    core = client.CoreV1Api(kc)
    core.create_namespaced_pod(ns, pod("gd"))
    core.create_namespaced_pod_binding("gd", ns, {"metadata": {"name": "gd"}, "target": {"name": "n"}},
                                       _preload_content=False)
    core.delete_namespaced_pod("gd", ns)
    p = core.read_namespaced_pod("gd", ns)  # still there: the kubelet has to stop it first
    assert p.metadata.deletion_timestamp is not None and p.metadata.deletion_grace_period_seconds == 30
    core.delete_namespaced_pod("gd", ns, grace_period_seconds=0)  # the kubelet confirms
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod("gd", ns)
    assert e.value.status == 404
    core.create_namespaced_pod(ns, pod("unbound"))
    core.delete_namespaced_pod("unbound", ns)  # never scheduled: gone at once
    assert "unbound" not in [x.metadata.name for x in core.list_namespaced_pod(ns).items]


def test_foreground_deletion_waits_for_finalizer(kc, ns):
    apps = client.AppsV1Api(kc)
    apps.create_namespaced_deployment(ns, deployment("fg"))
    apps.delete_namespaced_deployment("fg", ns, propagation_policy="Foreground")
    d = apps.read_namespaced_deployment("fg", ns)
    assert d.metadata.deletion_timestamp and d.metadata.finalizers == ["foregroundDeletion"]
    apps.patch_namespaced_deployment("fg", ns, {"metadata": {"finalizers": None}})  # the GC is done
    with pytest.raises(ApiException):
        apps.read_namespaced_deployment("fg", ns)


def test_conflicts(api, kc, ns):
    core = client.CoreV1Api(kc)
    cm = core.create_namespaced_config_map(ns, {"metadata": {"name": "c"}, "data": {"v": "1"}})
    cm.data = {"v": "2"}
    core.replace_namespaced_config_map("c", ns, cm)
    cm.data = {"v": "3"}  # still carries the old resourceVersion
    before = api.store.revision
    with pytest.raises(ApiException) as e:
        core.replace_namespaced_config_map("c", ns, cm)
    body = json.loads(e.value.body)
    assert e.value.status == 409 and body["reason"] == "Conflict"
    assert "the object has been modified" in body["message"]
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map(ns, {"metadata": {"name": "c"}})
    assert json.loads(e.value.body)["reason"] == "AlreadyExists"
    assert api.store.revision == before
    assert core.read_namespaced_config_map("c", ns).data == {"v": "2"}


def test_pagination_with_limit_and_continue(kc, ns):
    core = client.CoreV1Api(kc)
    for i in range(7):
        core.create_namespaced_config_map(ns, {"metadata": {"name": f"cm{i}", "labels": {"odd": str(i % 2)}}})
    names, token = [], None
    while True:
        page = core.list_namespaced_config_map(ns, limit=3, _continue=token, label_selector="odd=0")
        names += [c.metadata.name for c in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert names == ["cm0", "cm2", "cm4", "cm6"]


def test_watch_without_resource_version_starts_with_added(kc, ns):
    core = client.CoreV1Api(kc)
    core.create_namespaced_pod(ns, pod("w1", {"app": "a"}))
    core.create_namespaced_pod(ns, pod("w2", {"app": "b"}))
    got = []
    w = watch.Watch()

    def run():
        for ev in w.stream(core.list_namespaced_pod, ns, label_selector="app=a", timeout_seconds=3):
            got.append((ev["type"], ev["object"].metadata.name))
            if len(got) == 3:
                w.stop()
    t = threading.Thread(target=run)
    t.start()
    wait_for(lambda: ("ADDED", "w1") in got, timeout=10, what="the watch's first event, w1 ADDED")
    core.patch_namespaced_pod("w2", ns, {"metadata": {"labels": {"app": "a"}}})  # now matches
    core.patch_namespaced_pod("w1", ns, {"metadata": {"labels": {"app": "z"}}})  # no longer matches
    t.join(5)
    assert got == [("ADDED", "w1"), ("ADDED", "w2"), ("DELETED", "w1")]


def test_watch_from_compacted_revision_is_410(api, kc, ns):
    core = client.CoreV1Api(kc)
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    for i in range(3):
        core.create_namespaced_config_map(ns, {"metadata": {"name": f"x{i}"}})
    api.compact()
    r = requests.get(f"{api.url}/api/v1/namespaces/{ns}/configmaps",
                     params={"watch": "true", "resourceVersion": rv}, timeout=5)
    assert r.status_code == 200
    ev = json.loads(r.text.splitlines()[0])
    assert ev["type"] == "ERROR" and ev["object"]["code"] == 410 and ev["object"]["reason"] == "Expired"
    with pytest.raises(ApiException) as e:
        list(watch.Watch().stream(core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=1))
    assert e.value.status == 410


def test_bookmarks_and_timeout(api, kc, ns):
    rv = client.CoreV1Api(kc).list_namespaced_pod(ns).metadata.resource_version
    t0 = time.monotonic()
    r = requests.get(f"{api.url}/api/v1/namespaces/{ns}/pods", params={
        "watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true", "timeoutSeconds": "2"}, timeout=10)
    assert time.monotonic() - t0 < 8
    types = {json.loads(line)["type"] for line in r.text.splitlines()}
    assert types == {"BOOKMARK"}


def test_namespace_deletion_removes_its_objects(kc):
    core = client.CoreV1Api(kc)
    core.create_namespace({"metadata": {"name": "doomed"}})
    core.create_namespaced_config_map("doomed", {"metadata": {"name": "c"}})
    core.delete_namespace("doomed")
    assert core.list_namespaced_config_map("doomed").items == []
    with pytest.raises(ApiException) as e:
        core.delete_namespace("default")
    assert e.value.status == 403


def test_pod_logs_are_proxied_from_the_kubelet_endpoint(kc, ns):
    import http.server
    import socketserver

    class Kubelet(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(f"log of {self.path}\n".encode())

        def log_message(self, *a):
            pass
    with socketserver.TCPServer(("127.0.0.1", 0), Kubelet) as srv:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        core = client.CoreV1Api(kc)
        node = f"logs-{ns}"
        core.create_node({"metadata": {"name": node}, "status": {
            "daemonEndpoints": {"kubeletEndpoint": {"Port": srv.server_address[1]}}}})
        core.create_namespaced_pod(ns, pod("lp"))
        core.create_namespaced_pod_binding("lp", ns, {"metadata": {"name": "lp"}, "target": {"name": node}},
                                           _preload_content=False)
        text = core.read_namespaced_pod_log("lp", ns)
        srv.shutdown()
    assert text.startswith(f"log of /containerLogs/{ns}/lp/c")
    core.delete_node(node)
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod_log("lp", ns, container="nope")
    assert e.value.status == 400


def test_list_by_node_name_follows_binds_and_deletes(kc, ns):
    core = client.CoreV1Api(kc)
    node = f"idx-{ns}"
    sel = f"spec.nodeName={node}"
    assert core.list_pod_for_all_namespaces(field_selector=sel).items == []
    for name in ("i1", "i2", "i3"):
        core.create_namespaced_pod(ns, pod(name))
    for name in ("i1", "i3"):
        core.create_namespaced_pod_binding(name, ns, {"metadata": {"name": name}, "target": {"name": node}},
                                           _preload_content=False)
    listed = core.list_pod_for_all_namespaces(field_selector=sel)
    assert [p.metadata.name for p in listed.items] == ["i1", "i3"]
    assert [p.metadata.name for p in core.list_namespaced_pod(ns, field_selector=sel, limit=1).items] == ["i1"]
    unscheduled = core.list_namespaced_pod(ns, field_selector="spec.nodeName=")
    assert [p.metadata.name for p in unscheduled.items] == ["i2"]
    core.delete_namespaced_pod("i1", ns, grace_period_seconds=0)
    assert [p.metadata.name for p in core.list_namespaced_pod(ns, field_selector=sel).items] == ["i3"]
    # a watch that starts where the list left off sees the next bind
    rv = core.list_namespaced_pod(ns, field_selector=sel).metadata.resource_version
    core.create_namespaced_pod_binding("i2", ns, {"metadata": {"name": "i2"}, "target": {"name": node}},
                                       _preload_content=False)
    events = [(e["type"], e["object"].metadata.name) for e in watch.Watch().stream(
        core.list_namespaced_pod, ns, field_selector=sel, resource_version=rv, timeout_seconds=1)]
    assert events == [("ADDED", "i2")]


def test_delete_collection_by_label(kc, ns):
    core = client.CoreV1Api(kc)
    for i in range(4):
        core.create_namespaced_config_map(ns, {"metadata": {"name": f"dc{i}", "labels": {"batch": str(i % 2)}}})
    core.delete_collection_namespaced_config_map(ns, label_selector="batch=1")
    assert sorted(c.metadata.name for c in core.list_namespaced_config_map(ns).items) == ["dc0", "dc2"]


def test_list_at_an_exact_older_revision(api, kc, ns):
    core = client.CoreV1Api(kc)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "v"}, "data": {"n": "1"}})
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    core.patch_namespaced_config_map("v", ns, {"data": {"n": "2"}})
    old = core.list_namespaced_config_map(ns, resource_version=rv, resource_version_match="Exact")
    assert old.items[0].data == {"n": "1"} and old.metadata.resource_version == rv
    assert core.list_namespaced_config_map(ns).items[0].data == {"n": "2"}


def test_stopping_the_server_ends_watches_cleanly():
    from labkit.controlplane.apiserver import APIServer

    server = APIServer("memory").start()
    cfg = client.Configuration()
    cfg.host = server.url
    core = client.CoreV1Api(client.ApiClient(cfg))
    seen: list = []
    errors: list = []

    def run():
        try:
            for ev in watch.Watch().stream(core.list_namespace, timeout_seconds=30):
                seen.append(ev["type"])
        except Exception as exc:  # an ERROR event would surface here as ApiException
            errors.append(exc)
    t = threading.Thread(target=run)
    t.start()
    wait_for(lambda: seen.count("ADDED") == 4 or errors, timeout=10, what="the watch listing the 4 namespaces")
    server.stop()
    t.join(10)
    assert not t.is_alive() and seen.count("ADDED") == 4 and not any(
        isinstance(e, ApiException) for e in errors)


def test_continue_token_from_before_compaction_is_410(api, kc, ns):
    core = client.CoreV1Api(kc)
    for i in range(3):
        core.create_namespaced_config_map(ns, {"metadata": {"name": f"pg{i}"}})
    page = core.list_namespaced_config_map(ns, limit=1)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "later"}})
    api.compact()
    with pytest.raises(ApiException) as e:
        core.list_namespaced_config_map(ns, limit=1, _continue=page.metadata._continue)
    assert e.value.status == 410 and json.loads(e.value.body)["reason"] == "Expired"


def test_dry_run_stores_nothing(api, kc, ns):
    core = client.CoreV1Api(kc)
    before = api.store.revision
    out = core.create_namespaced_pod(ns, pod("dry"), dry_run="All")
    assert out.metadata.name == "dry" and out.spec.restart_policy == "Always"
    assert api.store.revision == before
    with pytest.raises(ApiException):
        core.read_namespaced_pod("dry", ns)


def test_eviction_deletes_the_pod_gracefully(kc, ns):
    core = client.CoreV1Api(kc)
    core.create_namespaced_pod(ns, pod("ev"))
    core.create_namespaced_pod_binding("ev", ns, {"metadata": {"name": "ev"}, "target": {"name": "n"}},
                                       _preload_content=False)
    core.create_namespaced_pod_eviction("ev", ns, {"apiVersion": "policy/v1", "kind": "Eviction",
                                                   "metadata": {"name": "ev", "namespace": ns}})
    assert core.read_namespaced_pod("ev", ns).metadata.deletion_timestamp is not None  # the kubelet stops it
    core.create_namespaced_pod_eviction("ev", ns, {"metadata": {"name": "ev"},
                                                   "deleteOptions": {"gracePeriodSeconds": 0}})
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod("ev", ns)
    assert e.value.status == 404


def test_periodic_compaction_keeps_one_interval_of_history():
    from labkit.controlplane.apiserver import APIServer

    with APIServer("memory", compact_interval=0.3) as server:
        first = server.store.revision
        cfg = client.Configuration()
        cfg.host = server.url
        core = client.CoreV1Api(client.ApiClient(cfg))
        core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
        deadline = time.monotonic() + 10
        while server.store.compact_revision <= first and time.monotonic() < deadline:
            core.patch_namespaced_config_map("a", "default", {"data": {"t": str(time.monotonic())}})
            time.sleep(0.1)
        assert server.store.compact_revision > first
        r = requests.get(f"{server.url}/api/v1/namespaces/default/configmaps",
                         params={"watch": "1", "resourceVersion": str(first), "timeoutSeconds": "1"}, timeout=5)
        assert json.loads(r.text.splitlines()[0])["object"]["code"] == 410


def test_services_get_unique_cluster_ips_and_node_ports(kc, ns):
    core = client.CoreV1Api(kc)
    ips = set()
    for i in range(5):
        s = core.create_namespaced_service(ns, {"metadata": {"name": f"svc{i}"}, "spec": {"ports": [{"port": 80}]}})
        ips.add(s.spec.cluster_ip)
        assert s.spec.cluster_ip.startswith("10.96.") and s.spec.cluster_ips == [s.spec.cluster_ip]
    assert len(ips) == 5
    np = core.create_namespaced_service(ns, {"metadata": {"name": "np"}, "spec": {
        "type": "NodePort", "ports": [{"port": 80}]}})
    assert 30000 <= np.spec.ports[0].node_port <= 32767
    with pytest.raises(ApiException) as e:
        core.create_namespaced_service(ns, {"metadata": {"name": "dup"}, "spec": {
            "clusterIP": next(iter(ips)), "ports": [{"port": 80}]}})
    assert e.value.status == 422
    s = core.read_namespaced_service("svc0", ns)
    s.spec.cluster_ip, s.spec.cluster_ips = None, None  # a PUT without the address keeps it
    assert core.replace_namespaced_service("svc0", ns, s).spec.cluster_ip in ips
