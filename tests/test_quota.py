"""ResourceQuota and LimitRange, as a student in a namespace meets them: defaults filled in, a
pod refused with kube-apiserver's message, usage given back after a delete, no overrun when many
creates race for the last unit, and a quota scoped to one PriorityClass."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess

import pytest
from kubernetes.client.rest import ApiException
from support.cluster import KUBECTL, wait_for

from labkit.cluster import Cluster


@pytest.fixture(scope="module")
def cluster():
    with Cluster(nodes=1, store="sqlite", processes=False) as c:  # sqlite: writes on worker threads, racing
        yield c


@pytest.fixture()
def ns(cluster):
    import uuid

    name = "q-" + uuid.uuid4().hex[:6]
    cluster.core().create_namespace({"metadata": {"name": name}})
    yield name
    cluster.core().delete_namespace(name)


def pod(name: str, cpu: str | None = None, limit: str | None = None, cls: str | None = None) -> dict:
    res: dict = {}
    if cpu:
        res["requests"] = {"cpu": cpu}
    if limit:
        res["limits"] = {"cpu": limit}
    spec: dict = {"terminationGracePeriodSeconds": 0,
                  "containers": [{"name": "app", "image": "busybox", "command": ["sleep", "3600"], "resources": res}]}
    if cls:
        spec["priorityClassName"] = cls
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def quota(core, ns: str, name: str, hard: dict, scope_classes: list[str] | None = None) -> dict:
    body: dict = {"metadata": {"name": name}, "spec": {"hard": hard}}
    if scope_classes:
        body["spec"]["scopeSelector"] = {"matchExpressions": [
            {"scopeName": "PriorityClass", "operator": "In", "values": scope_classes}]}
    core.create_namespaced_resource_quota(ns, body)
    return wait_for(lambda: (core.read_namespaced_resource_quota(name, ns).status or None)
                    and core.read_namespaced_resource_quota(name, ns).status.hard, what=f"quota {name}'s status")


def refused(fn, *args) -> str:  # noqa: ANN001, ANN002
    with pytest.raises(ApiException) as exc:
        fn(*args)
    assert exc.value.status == 403, exc.value.body
    return json.loads(exc.value.body)["message"]


def used(core, ns: str, name: str) -> dict:
    return core.read_namespaced_resource_quota(name, ns).status.used or {}


def test_quota_refuses_with_kube_apiservers_messages_and_gives_usage_back(cluster, ns) -> None:
    core = cluster.core()
    quota(core, ns, "compute", {"pods": "3", "requests.cpu": "1", "limits.cpu": "2"})
    msg = refused(core.create_namespaced_pod, ns, pod("bare"))
    assert msg == 'pods "bare" is forbidden: failed quota: compute: must specify limits.cpu for: app; ' \
                  'requests.cpu for: app'
    core.create_namespaced_pod(ns, pod("a", cpu="600m", limit="1"))
    assert used(core, ns, "compute") == {"limits.cpu": "1", "pods": "1", "requests.cpu": "600m"}
    msg = refused(core.create_namespaced_pod, ns, pod("b", cpu="500m", limit="1"))
    assert msg == 'pods "b" is forbidden: exceeded quota: compute, requested: requests.cpu=500m, ' \
                  'used: requests.cpu=600m, limited: requests.cpu=1'
    core.delete_namespaced_pod("a", ns, grace_period_seconds=0)
    wait_for(lambda: used(core, ns, "compute").get("requests.cpu") == "0", what="usage given back after a delete")
    core.create_namespaced_pod(ns, pod("b", cpu="500m", limit="1"))


def test_limitrange_fills_defaults_and_refuses_what_is_too_big(cluster, ns) -> None:
    core = cluster.core()
    core.create_namespaced_limit_range(ns, {"metadata": {"name": "defaults"}, "spec": {"limits": [
        {"type": "Container", "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "100m"}, "max": {"cpu": "1"}}]}})
    created = core.create_namespaced_pod(ns, pod("plain"))
    res = created.spec.containers[0].resources
    assert res.requests == {"cpu": "100m"} and res.limits == {"cpu": "500m"}
    msg = refused(core.create_namespaced_pod, ns, pod("huge", limit="2"))
    assert msg == 'pods "huge" is forbidden: maximum cpu usage per Container is 1, but limit is 2'


def test_racing_creates_never_overrun_the_quota(cluster, ns) -> None:
    core = cluster.core()
    quota(core, ns, "five", {"count/configmaps": "5"})

    def make(i: int) -> bool:
        try:
            core.create_namespaced_config_map(ns, {"metadata": {"name": f"cm-{i}"}, "data": {"i": str(i)}})
            return True
        except ApiException as exc:
            assert exc.status in (403, 409), exc.body
            return False

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        made = sum(pool.map(make, range(30)))
    listed = len(core.list_namespaced_config_map(ns).items)
    assert made == listed == 5


def test_quota_scoped_to_a_priority_class_counts_only_its_pods(cluster, ns) -> None:
    core = cluster.core()
    sched = cluster.client()
    from kubernetes import client

    pcs = client.SchedulingV1Api(sched)
    try:
        pcs.create_priority_class({"metadata": {"name": "prod-q"}, "value": 1000})
    except ApiException as exc:
        assert exc.status == 409
    quota(core, ns, "prod", {"pods": "1"}, scope_classes=["prod-q"])
    core.create_namespaced_pod(ns, pod("p1", cls="prod-q"))
    core.create_namespaced_pod(ns, pod("other-1"))  # no class: not in the quota's scope
    core.create_namespaced_pod(ns, pod("other-2"))
    msg = refused(core.create_namespaced_pod, ns, pod("p2", cls="prod-q"))
    assert "exceeded quota: prod, requested: pods=1, used: pods=1, limited: pods=1" in msg


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_describes_the_quota(cluster, ns) -> None:
    core = cluster.core()
    quota(core, ns, "compute", {"pods": "4", "requests.memory": "1Gi"})
    out = subprocess.run([KUBECTL, "--kubeconfig", cluster.kubeconfig, "-n", ns, "describe", "quota", "compute"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "pods" in out.stdout and "requests.memory" in out.stdout and "1Gi" in out.stdout
    out = subprocess.run([KUBECTL, "--kubeconfig", cluster.kubeconfig, "-n", ns, "get", "quota"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "compute" in out.stdout, out.stderr
    assert "pods: 0/4, requests.memory: 0/1Gi" in out.stdout, out.stdout
