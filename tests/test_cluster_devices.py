"""Extended resources end to end: a device plugin's GPUs show up on the Node and steer the scheduler."""

from __future__ import annotations

import pytest
from support.cluster import wait_for

from labkit.cluster import Cluster

pytestmark = pytest.mark.slow


def test_gpu_pods_land_on_the_gpu_node_and_get_their_device():
    with Cluster(nodes=2, processes=False, store="memory", node_gpus={"node-2": 1}) as c:
        core = c.core()
        wait_for(lambda: core.read_node("node-2").status.capacity.get("nvidia.com/gpu") == "1", 30,
                 "node-2 advertising nvidia.com/gpu")
        assert "nvidia.com/gpu" not in core.read_node("node-1").status.capacity

        def gpu_pod(name):
            core.create_namespaced_pod("default", {"metadata": {"name": name}, "spec": {
                "terminationGracePeriodSeconds": 0,
                "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "env; sleep 3600"],
                                "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}})

        gpu_pod("train-1")
        p = wait_for(lambda: (lambda p: p if p.status.phase == "Running" else None)(
            core.read_namespaced_pod("train-1", "default")), 60, "train-1 running")
        assert p.spec.node_name == "node-2"
        log = wait_for(lambda: core.read_namespaced_pod_log("train-1", "default"), 30, "env in the log")
        assert "NVIDIA_VISIBLE_DEVICES=" in log
        gpu_pod("train-2")  # the only GPU is taken
        wait_for(lambda: any(e.reason == "FailedScheduling" and "Insufficient nvidia.com/gpu" in e.message
                             for e in core.list_namespaced_event(
                                 "default", field_selector="involvedObject.name=train-2").items),
                 30, "FailedScheduling for the second GPU pod")


def test_gpus_fall_back_to_the_in_process_plugin_where_no_pod_can_run():
    with Cluster(nodes=1, gpus=1, runtime="simulated", store="memory", processes=False) as c:
        assert "inside each kubelet" in c.device_plugins and "simulated runtime" in c.device_plugins
        assert "GPUs" in c.describe()
        core = c.core()
        wait_for(lambda: core.read_node("node-1").status.allocatable.get("nvidia.com/gpu") == "1", 30,
                 "node-1 advertising the in-process plugin's GPU")
        assert not c.apps().list_namespaced_daemon_set("kube-system").items
