"""Horizontal scaling and monitoring: metrics.k8s.io, the HPA, and Prometheus /metrics.

The algorithm is checked as units (tolerance, stabilization window, bounds). One in-process
cluster serves the rest: `kubectl top` shows numbers, `kubectl autoscale` scales a busy
deployment up, `kubectl get hpa` prints kube's columns, and every component's /metrics parses
with prometheus_client's own parser.
"""

from __future__ import annotations

import re
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.cluster import KUBECTL, kubectl, wait_for

from labkit.cluster import Cluster
from labkit.controlplane.apiserver.autoscaling import to_v1, to_v2
from labkit.controlplane.controllers.podautoscaler import PodUsage, limit, recommend, stabilize


def pods(*usages: float | None, request: float = 100, ready: bool = True) -> list[PodUsage]:
    return [PodUsage(u, request, ready) for u in usages]


# ---------------------------------------------------------------------- the algorithm
def test_recommend_is_ceil_of_pods_times_usage_over_target():
    rec = recommend(2, pods(90, 90), target=50)  # 180 % of target on 2 pods -> ceil(3.6)
    assert rec.replicas == 4 and rec.utilization == 90
    assert recommend(4, pods(10, 10, 10, 10), target=50).replicas == 1  # ceil(0.2 * 4)


def test_within_tolerance_nothing_changes():
    assert recommend(3, pods(54, 54, 54), target=50).replicas == 3  # ratio 1.08: inside 0.1
    assert recommend(3, pods(56, 56, 56), target=50).replicas == 4  # ratio 1.12: outside
    assert recommend(3, pods(56, 56, 56), target=50, tolerance=0.2).replicas == 3  # configurable


def test_pods_without_metrics_make_scaling_cautious():
    # scaling up: the pod without metrics counts as using nothing -> 2 pods at 120 % of target -> 3
    assert recommend(2, pods(120, None), target=100).replicas == 2  # (120+0)/200 = 0.6 flips direction
    assert recommend(2, pods(300, None), target=100).replicas == 3  # (300+0)/200 = 1.5 -> ceil(3)
    # scaling down: it counts as using exactly the target, so the step down is smaller
    assert recommend(3, pods(10, 10, None), target=50).replicas == 2  # (10+10+50)/300*100/50 -> ceil(1.4)
    # not-ready pods count as idle when scaling up
    assert recommend(2, pods(200) + pods(0, ready=False), target=100).replicas == 2


def test_scale_down_waits_for_the_stabilization_window():
    history: list = []
    desired, history = stabilize(history, 0.0, 5, current=2, down_window=10)
    assert desired == 5  # up at once
    desired, history = stabilize(history, 4.0, 1, current=5, down_window=10)
    assert desired == 5  # a lower recommendation within 10 s of the 5 keeps 5
    desired, history = stabilize(history, 11.0, 1, current=5, down_window=10)
    assert desired == 1  # the 5 fell out of the window
    desired, _ = stabilize([], 0.0, 1, current=5, down_window=0)
    assert desired == 1  # window 0: no stabilization


def test_bounds_and_step_limits():
    assert limit(10, 3, 1, 5)[:2] == (5, "TooManyReplicas")
    assert limit(0, 3, 2, 5)[:2] == (2, "TooFewReplicas")
    assert limit(20, 2, 1, 50)[:2] == (4, "ScaleUpLimit")  # at most max(2 x 2, 4) in one step
    assert limit(3, 2, 1, 5)[:2] == (3, "DesiredWithinRange")


def test_v1_is_a_view_of_the_stored_v2_object():
    v1 = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "a"},
          "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 4,
                   "targetCPUUtilizationPercentage": 60}}
    v2 = to_v2(v1)
    assert v2["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 60}
    assert to_v1(v2)["spec"] == v1["spec"]


# ---------------------------------------------------------------------- on a cluster
BUSY = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "busy"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "busy"}},
                 "template": {"metadata": {"labels": {"app": "busy"}}, "spec": {
                     "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "spin", "image": "busybox", "command": ["sh", "-c", "while :; do :; done"],
                                     "resources": {"requests": {"cpu": "50m"}}}]}}}}


@pytest.fixture(scope="module")
def cluster():
    with Cluster(nodes=1, store="memory", processes=False, hpa_sync_period=1.0, hpa_downscale_stabilization=5.0) as c:
        c.apps().create_namespaced_deployment("default", BUSY)
        yield c


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_top_shows_usage(cluster):
    out = wait_for(lambda: (o := kubectl(cluster, "top", "pods", check=False)) and re.search(r"busy-\S+\s+\d+m", o)
                   and o, 30, "kubectl top pods to show the busy pod")
    assert "CPU(cores)" in out and "MEMORY(bytes)" in out
    nodes = kubectl(cluster, "top", "nodes")
    assert re.search(r"node-1\s+\d+m\s+\d+%\s+\d+Mi", nodes), nodes


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_autoscale_scales_a_busy_deployment_up(cluster):
    kubectl(cluster, "autoscale", "deployment", "busy", "--cpu-percent=50", "--min=1", "--max=2")
    apps = cluster.apps()
    wait_for(lambda: apps.read_namespaced_deployment("busy", "default").spec.replicas == 2, 40,
             "the HPA to scale busy to 2")
    out = wait_for(lambda: (o := kubectl(cluster, "get", "hpa")) and "cpu: <unknown>" not in o and o, 20,
                   "the HPA to report a reading")
    assert out.split("\n")[0].split() == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
    assert re.search(r"busy\s+Deployment/busy\s+cpu: \d+%/50%\s+1\s+2\s+[12]\s", out), out
    described = kubectl(cluster, "describe", "hpa", "busy")
    assert "SuccessfulRescale" in described and "ScalingLimited" in described
    apps.delete_namespaced_deployment("busy", "default")  # stop spinning before the next test


def test_probes_of_every_kind_act(cluster):
    """httpGet readiness takes a pod out of service, tcpSocket liveness passes, exec liveness restarts."""
    core = cluster.core()
    once = lambda kind, **how: {kind: how, "periodSeconds": 1, "failureThreshold": 1}  # noqa: E731
    serve = "mkdir -p /www && echo ok > /www/index.html && httpd -p 8080 -h /www && sleep 3600"
    core.create_namespaced_pod("default", {"metadata": {"name": "probed"}, "spec": {
        "terminationGracePeriodSeconds": 0, "containers": [
            {"name": "app", "image": "busybox", "command": ["sh", "-c", serve],
             "readinessProbe": once("httpGet", path="/index.html", port=8080),
             "livenessProbe": once("tcpSocket", port=8080)},
            {"name": "gated", "image": "busybox", "command": ["sh", "-c", serve],
             "readinessProbe": once("httpGet", path="/missing.html", port=8080)},
            {"name": "heart", "image": "busybox", "command": ["sh", "-c", "touch /tmp/a; sleep 1; rm /tmp/a; sleep 3600"],
             "livenessProbe": once("exec", command=["cat", "/tmp/a"])}]}})

    def statuses() -> dict:
        st = core.read_namespaced_pod("probed", "default").status.container_statuses or []
        return {s.name: s for s in st}
    wait_for(lambda: (s := statuses()) and s["app"].ready and s["heart"].restart_count >= 1, 30,
             "app ready (httpGet), heart restarted (exec)")
    s = statuses()
    assert s["app"].restart_count == 0  # its tcpSocket liveness probe passes
    assert not s["gated"].ready  # a 404 is a failed httpGet
    core.delete_namespaced_pod("probed", "default", grace_period_seconds=0)


def scrape(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return {f.name: f for f in text_string_to_metric_families(r.read().decode())}


def test_every_component_serves_prometheus_metrics(cluster):
    urls = cluster.metrics_urls()
    assert {"apiserver", "scheduler", "controller-manager", "kubelet-node-1"} <= set(urls)
    api = scrape(urls["apiserver"])
    samples = api["apiserver_request"].samples  # the parser names the family without _total
    assert any(s.labels.get("verb") == "LIST" and s.labels.get("resource") == "pods" and s.labels.get("code") == "200"
               for s in samples)
    assert "apiserver_request_duration_seconds" in api
    assert scrape(urls["scheduler"])["scheduler_schedule_attempts"].samples
    assert any(s.labels["name"] == "horizontal-pod-autoscaler"
               for s in scrape(urls["controller-manager"])["workqueue_adds"].samples)
    kubelet = scrape(urls["kubelet-node-1"])
    for name in ("container_cpu_usage_seconds", "container_memory_working_set_bytes", "kubelet_running_pods"):
        assert name in kubelet, sorted(kubelet)
