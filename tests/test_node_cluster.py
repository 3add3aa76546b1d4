"""The Node's plug points inside a real labkit cluster (apiserver, scheduler, controllers, kubelets).

The issue's "done when": in a 2-node cluster two pods on different nodes reach each other by pod
IP and through a Service; a pod's data outlives it on a claim; a pod asking for one
nvidia.com/gpu lands on the node whose plugin advertised it and sees its device; a claim that
cannot be mounted and a pod asking for too many GPUs get Events; nothing is left behind.
"""

from __future__ import annotations

import os

import pytest
from support.cluster import wait_for

from labkit import paths

pytestmark = [
    pytest.mark.slow,
    pytest.mark.root,
    pytest.mark.skipif(not (paths.is_root() and os.path.exists("/usr/lib/cni/bridge")),
                       reason="needs root and containernetworking-plugins"),
]


@pytest.fixture(scope="module")
def cluster():
    from labkit.cluster import Cluster
    from labkit.node.scope import cluster_scope

    c = Cluster(nodes=2)
    c.start()
    scope = cluster_scope(c.kubeconfig)
    yield c
    c.stop()
    left = [n for n in os.listdir("/run/netns") if scope in n]
    assert left == [], f"network namespaces left behind: {left}"


def exec_in(cluster, pod, node, argv):
    from labkit.node.cri import RemoteRuntime

    rt = RemoteRuntime(f"unix://{cluster.dir}/{node}-cri.sock")
    try:
        sb = next(s for s in rt.list_pod_sandboxes() if s.name == pod and s.state == "SANDBOX_READY")
        ctr = next(c for c in rt.list_containers(sb.id) if c.state == "CONTAINER_RUNNING")
        return rt.exec_sync(ctr.id, argv, timeout=5)
    finally:
        rt.close()


def events_for(core, name):
    return [(e.reason, e.message) for e in core.list_namespaced_event("default").items
            if e.involved_object.name == name]


def test_pods_on_two_nodes_reach_each_other_by_ip_and_service(cluster):
    core = cluster.core()
    for name, node in (("net-a", "node-1"), ("net-b", "node-2")):
        script = f"mkdir -p /w && echo {name} > /w/index.html && httpd -f -p 80 -h /w"
        core.create_namespaced_pod("default", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "net-b" if name == "net-b" else "x"}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", script]}]}})
    core.create_namespaced_service("default", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "net-b"},
                                               "spec": {"selector": {"app": "net-b"}, "ports": [{"port": 8080, "targetPort": 80}]}})
    pods = wait_for(lambda: (ps := {p.metadata.name: p for p in core.list_namespaced_pod("default").items
                                    if p.metadata.name.startswith("net-")})
                    and len(ps) == 2 and all(p.status.pod_ip and p.status.phase == "Running" for p in ps.values()) and ps,
                    what="pods running with IPs")
    cidrs = {n.metadata.name: n.spec.pod_cidr for n in core.list_node().items}
    import ipaddress

    for p in pods.values():  # each pod's IP comes from its own node's podCIDR
        assert ipaddress.ip_address(p.status.pod_ip) in ipaddress.ip_network(cidrs[p.spec.node_name])
    ip_b = pods["net-b"].status.pod_ip
    r = wait_for(lambda: (x := exec_in(cluster, "net-a", "node-1", ["wget", "-q", "-O-", f"http://{ip_b}/"])).exit_code == 0 and x,
                 what="pod IP reachable")
    assert r.stdout.decode().strip() == "net-b"
    cip = core.read_namespaced_service("net-b", "default").spec.cluster_ip
    r = wait_for(lambda: (x := exec_in(cluster, "net-a", "node-1", ["wget", "-q", "-O-", f"http://{cip}:8080/"])).exit_code == 0 and x,
                 what="ClusterIP reachable")
    assert r.stdout.decode().strip() == "net-b"


def test_claim_data_outlives_its_pod_and_unbound_claim_gets_failedmount(cluster):
    from kubernetes import client as k8s

    core = cluster.core()
    k8s.StorageV1Api(cluster.client()).create_storage_class({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "lk-hostpath"},
        "provisioner": "hostpath.csi.labkit.io", "reclaimPolicy": "Delete"})
    for name, cls in (("keep", "lk-hostpath"), ("never", "")):
        core.create_namespaced_persistent_volume_claim("default", {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"storageClassName": cls, "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}}})

    def pod(name, node, claim, script):
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"nodeName": node, "restartPolicy": "Never",
                         "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": claim}}],
                         "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", script],
                                         "volumeMounts": [{"name": "v", "mountPath": "/v"}]}]}}

    def phase(name):
        return core.read_namespaced_pod(name, "default").status.phase

    wait_for(lambda: core.read_namespaced_persistent_volume_claim("keep", "default").status.phase == "Bound", what="bound")
    core.create_namespaced_pod("default", pod("w", "node-1", "keep", "echo kept > /v/f"))
    wait_for(lambda: phase("w") == "Succeeded", what="writer done")
    core.delete_namespaced_pod("w", "default")
    core.create_namespaced_pod("default", pod("r", "node-2", "keep", "cat /v/f"))
    wait_for(lambda: phase("r") == "Succeeded", what="reader done")
    assert core.read_namespaced_pod_log("r", "default").strip() == "kept"

    core.create_namespaced_pod("default", pod("stuck", "node-1", "never", "true"))
    ev = wait_for(lambda: [e for e in events_for(core, "stuck") if e[0] == "FailedMount"], what="FailedMount event")
    assert '"never" is not bound' in ev[0][1]
    assert phase("stuck") == "Pending"


def test_gpu_pod_lands_where_the_plugin_is_and_too_many_stays_pending(cluster):
    from labkit.node.deviceplugin import SampleDevicePlugin
    from labkit.node.scope import device_plugin_dir

    core = cluster.core()
    plugin = SampleDevicePlugin(device_plugin_dir("node-2", cluster.kubeconfig), count=2, real=False).start()
    try:
        wait_for(lambda: core.read_node("node-2").status.allocatable.get("nvidia.com/gpu") == "2", what="gpu allocatable")

        def gpu_pod(name, n):
            return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                    "spec": {"restartPolicy": "Never", "containers": [{
                        "name": "c", "image": "busybox", "command": ["sh", "-c", "echo $NVIDIA_VISIBLE_DEVICES; ls /dev/nvidia0"],
                        "resources": {"limits": {"nvidia.com/gpu": str(n)}}}]}}

        core.create_namespaced_pod("default", gpu_pod("gpu-1", 1))
        wait_for(lambda: core.read_namespaced_pod("gpu-1", "default").status.phase == "Succeeded", what="gpu pod done")
        p = core.read_namespaced_pod("gpu-1", "default")
        assert p.spec.node_name == "node-2"
        assert core.read_namespaced_pod_log("gpu-1", "default").split() == ["LK-GPU-0", "/dev/nvidia0"]
        core.create_namespaced_pod("default", gpu_pod("gpu-3", 3))
        ev = wait_for(lambda: [e for e in events_for(core, "gpu-3") if e[0] == "FailedScheduling"], what="FailedScheduling")
        assert "Insufficient nvidia.com/gpu" in ev[0][1]
        assert core.read_namespaced_pod("gpu-3", "default").status.phase == "Pending"
    finally:
        plugin.stop()
