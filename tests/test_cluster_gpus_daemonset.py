"""``Cluster(gpus=N)`` deploys the sample GPU plugin as real clusters do: a DaemonSet in kube-system."""

from __future__ import annotations

import threading

import pytest
from kubernetes import watch
from support.cluster import wait_for

from labkit import paths
from labkit.cluster import Cluster
from labkit.cluster.gpuplugin import NAME, NAMESPACE, SIMULATED_LABEL, daemonset_runs_here

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not paths.is_root(), reason="the plugin's pod chroots into the host: needs root")]

SELECTOR = f"name={NAME}"


@pytest.fixture(scope="module")
def cluster():
    with Cluster(nodes=2, gpus=2, store="memory") as c:
        if not daemonset_runs_here(c.runtime_name)[0]:
            pytest.skip(f"this host's runtime runs no plugin pod: {c.device_plugins}")
        yield c


def ready_plugin_pods(core) -> list:
    return [p for p in core.list_namespaced_pod(NAMESPACE, label_selector=SELECTOR).items
            if p.status.phase == "Running" and not p.metadata.deletion_timestamp
            and all(s.ready for s in p.status.container_statuses or [])]


def gpus(core, node: str) -> str | None:
    return (core.read_node(node).status.allocatable or {}).get("nvidia.com/gpu")


def test_one_ready_plugin_pod_per_node_labelled_simulated(cluster):
    core, apps = cluster.core(), cluster.apps()
    assert "DaemonSet" in cluster.device_plugins
    ds = apps.read_namespaced_daemon_set(NAME, NAMESPACE)
    assert ds.metadata.labels[SIMULATED_LABEL] == "simulated"
    pods = wait_for(lambda: (lambda ps: ps if len(ps) == 2 else None)(ready_plugin_pods(core)), 60,
                    "one ready plugin pod per node")
    assert sorted(p.spec.node_name for p in pods) == ["node-1", "node-2"]
    log = core.read_namespaced_pod_log(pods[0].metadata.name, NAMESPACE)
    assert "simulated GPUs" in log and "NOT real GPUs" in log


def test_every_node_advertises_the_plugins_gpus(cluster):
    core = cluster.core()
    for node in cluster.node_names():
        assert gpus(core, node) == "2"
        assert core.read_node(node).status.capacity.get("nvidia.com/gpu") == "2"


def test_a_gpu_pod_is_scheduled_and_gets_its_device(cluster):
    core = cluster.core()
    core.create_namespaced_pod("default", {"metadata": {"name": "train"}, "spec": {
        "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "c", "image": "busybox",
                        "command": ["sh", "-c", "env; ls /dev; cat /run/labkit-gpu/devices.json; sleep 3600"],
                        "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}})
    try:
        wait_for(lambda: core.read_namespaced_pod("train", "default").status.phase == "Running", 60, "train running")
        log = wait_for(lambda: (lambda t: t if '"model"' in t else None)(
            core.read_namespaced_pod_log("train", "default")), 30, "the pod's output")
        assert "NVIDIA_VISIBLE_DEVICES=LK-GPU-" in log
        assert "nvidia0" in log  # the device node the plugin's Allocate gave it
        assert '"model": "labkit simulated GPU"' in log  # the plugin's read-only mount
    finally:
        core.delete_namespaced_pod("train", "default", grace_period_seconds=0)


def test_deleting_the_plugin_pod_drops_capacity_until_the_daemonset_recreates_it(cluster):
    core = cluster.core()
    pod = next(p for p in ready_plugin_pods(core) if p.spec.node_name == "node-1")
    seen: list[str | None] = []  # every allocatable count node-1 posts (the gap may be short)
    stream = watch.Watch()

    def record() -> None:
        try:
            for ev in stream.stream(cluster.core().list_node, field_selector="metadata.name=node-1",
                                    timeout_seconds=120):
                seen.append((ev["object"].status.allocatable or {}).get("nvidia.com/gpu"))
        except Exception:  # noqa: BLE001 - the watch ends with the cluster; what it saw is what counts
            pass

    watcher = threading.Thread(target=record, daemon=True)
    watcher.start()
    try:
        core.delete_namespaced_pod(pod.metadata.name, NAMESPACE)
        wait_for(lambda: any(v in (None, "0") for v in seen), 60, "node-1's GPUs gone with its plugin")
        assert gpus(core, "node-2") == "2"
        wait_for(lambda: gpus(core, "node-1") == "2", 90, "node-1's GPUs back once the DaemonSet recreated the plugin")
    finally:
        stream.stop()
    new = wait_for(lambda: [p for p in ready_plugin_pods(core) if p.spec.node_name == "node-1"], 30,
                   "a new plugin pod on node-1")
    assert new[0].metadata.name != pod.metadata.name
