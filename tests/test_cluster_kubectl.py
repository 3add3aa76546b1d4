"""A whole cluster (every component its own process) driven by kubectl and the official Python client."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest
import yaml
from support.cluster import KUBECTL, clear_namespace, deployment, kubectl, running_pods, wait_for

from labkit.cluster import Cluster

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    with Cluster(nodes=3, store="sqlite", processes=True) as c:
        yield c


@pytest.fixture(autouse=True)
def clean_default(cluster):
    yield
    clear_namespace(cluster)


def test_nodes_register_with_the_runtime_that_really_runs(cluster):
    core = cluster.core()
    nodes = core.list_node().items
    assert sorted(n.metadata.name for n in nodes) == ["node-1", "node-2", "node-3"]
    for n in nodes:
        assert n.status.node_info.container_runtime_version.startswith(cluster.runtime_name.split(":")[0])
        assert n.spec.pod_cidr, "node IPAM gave every node a pod CIDR"
    assert len({n.spec.pod_cidr for n in nodes}) == 3


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_kubectl_apply_scale_delete_logs_describe_rollout(cluster, tmp_path):
    core = cluster.core()
    f = tmp_path / "web.yaml"
    f.write_text(yaml.safe_dump(deployment("web", 3, "echo hello from $HOSTNAME; sleep 3600")))
    assert "created" in kubectl(cluster, "apply", "-f", str(f))
    kubectl(cluster, "rollout", "status", "deployment/web", "--timeout=60s")
    pods = wait_for(lambda: len(running_pods(core, "app=web")) == 3 and running_pods(core, "app=web"),
                    what="3 running web pods")
    assert all(p.status.pod_ip and p.spec.node_name for p in pods)
    assert len({p.spec.node_name for p in pods}) >= 2, "the scheduler spreads pods over nodes"

    out = kubectl(cluster, "get", "pods", "-o", "wide")
    assert "Running" in out and "NODE" in out
    name = pods[0].metadata.name
    assert f"hello from {name}" in wait_for(lambda: kubectl(cluster, "logs", name).strip(), what="log line")
    desc = kubectl(cluster, "describe", "pod", name)
    for reason in ("Scheduled", "Pulled", "Created", "Started"):
        assert reason in desc

    kubectl(cluster, "scale", "deployment/web", "--replicas=5")
    wait_for(lambda: len(running_pods(core, "app=web")) == 5, what="5 pods after kubectl scale")
    kubectl(cluster, "delete", "pod", name, "--wait=true")
    wait_for(lambda: len(running_pods(core, "app=web")) == 5
             and name not in {p.metadata.name for p in running_pods(core, "app=web")},
             what="a replacement for the deleted pod")

    kubectl(cluster, "set", "env", "deployment/web", "COLOR=blue")
    kubectl(cluster, "rollout", "status", "deployment/web", "--timeout=90s")
    rs = cluster.apps().list_namespaced_replica_set("default", label_selector="app=web").items
    assert len(rs) == 2
    assert "2" in kubectl(cluster, "rollout", "history", "deployment/web")
    kubectl(cluster, "rollout", "undo", "deployment/web")
    kubectl(cluster, "rollout", "status", "deployment/web", "--timeout=90s")
    dep = cluster.apps().read_namespaced_deployment("web", "default")
    assert not any(e.name == "COLOR" for e in dep.spec.template.spec.containers[0].env or [])
    assert dep.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    assert dep.status.updated_replicas == 5 and dep.status.available_replicas == 5
    kubectl(cluster, "delete", "deployment", "web")
    wait_for(lambda: not core.list_namespaced_pod("default", label_selector="app=web").items,
             what="the garbage collector removing the deployment's pods")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_kubectl_get_watch_streams_a_pod_to_completion(cluster):
    lines: list[str] = []
    log: list[str] = []  # -v=6 logs each request once answered: the watch is open when its GET is logged
    w = subprocess.Popen([KUBECTL, "--kubeconfig", cluster.kubeconfig, "get", "pods", "-w", "-v=6"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reader = threading.Thread(target=lambda: lines.extend(iter(w.stdout.readline, "")), daemon=True)
    reader.start()
    threading.Thread(target=lambda: log.extend(iter(w.stderr.readline, "")), daemon=True).start()
    try:
        wait_for(lambda: any("watch=true" in ln for ln in list(log)), timeout=30,
                 what="kubectl get -w to open its watch (its -v=6 log names a watch=true GET)")
        kubectl(cluster, "run", "once", "--image=busybox", "--restart=Never", "--", "sh", "-c", "echo done")
        wait_for(lambda: cluster.core().read_namespaced_pod("once", "default").status.phase == "Succeeded",
                 what="pod once Succeeded")
        # the stream shows the pod's last state as soon as the watch delivers it
        wait_for(lambda: any(ln.startswith("once") and "Completed" in ln for ln in list(lines)), timeout=30,
                 what=f"a Completed line in kubectl get -w; it printed {lines}")
    finally:
        w.terminate()
        w.wait(timeout=10)
        reader.join(timeout=10)
        kubectl(cluster, "delete", "pod", "once", "--ignore-not-found", check=False)
    mine = [ln for ln in lines if ln.startswith("once")]
    assert any("Pending" in ln or "ContainerCreating" in ln for ln in mine), lines


def test_python_client_create_watch_patch_scale_delete(cluster):
    from kubernetes import watch

    core, apps = cluster.core(), cluster.apps()
    apps.create_namespaced_deployment("default", deployment("api", 2))
    seen = set()
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_pod, "default", label_selector="app=api", timeout_seconds=60):
        p = ev["object"]
        if p.status.phase == "Running":
            seen.add(p.metadata.name)
        if len(seen) == 2:
            w.stop()
    assert len(seen) == 2
    apps.patch_namespaced_deployment_scale("api", "default", {"spec": {"replicas": 4}})
    wait_for(lambda: len(running_pods(core, "app=api")) == 4, what="4 api pods after scale")
    apps.patch_namespaced_deployment("api", "default", {"spec": {"template": {"metadata": {"labels": {
        "app": "api", "tier": "backend"}}}}})
    wait_for(lambda: len([p for p in running_pods(core, "app=api") if p.metadata.labels.get("tier")]) == 4,
             what="a rolling update to the labelled template")
    dep = apps.read_namespaced_deployment_status("api", "default")
    assert dep.status.observed_generation == dep.metadata.generation
    apps.delete_namespaced_deployment("api", "default", propagation_policy="Foreground")
    wait_for(lambda: not core.list_namespaced_pod("default", label_selector="app=api").items
             and not apps.list_namespaced_deployment("default").items,
             what="foreground deletion: pods, replica sets, then the deployment")


def test_crashing_container_restarts_with_backoff(cluster):
    core = cluster.core()
    core.create_namespaced_pod("default", {
        "metadata": {"name": "crasher"},
        "spec": {"terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "echo boom; exit 2"]}]}})
    pod = wait_for(lambda: (lambda p: p if p.status.container_statuses
                            and p.status.container_statuses[0].restart_count >= 2 else None)(
        core.read_namespaced_pod("crasher", "default")), timeout=60, what="two restarts")
    cs = pod.status.container_statuses[0]
    assert cs.last_state.terminated.exit_code == 2
    reasons = {e.reason for e in core.list_namespaced_event(
        "default", field_selector="involvedObject.name=crasher").items}
    assert "BackOff" in reasons or "Started" in reasons
    core.delete_namespaced_pod("crasher", "default")


def test_readiness_and_liveness_probes_drive_ready_and_restarts(cluster):
    core = cluster.core()
    core.create_namespaced_pod("default", {"metadata": {"name": "probed"}, "spec": {
        "terminationGracePeriodSeconds": 0,
        "containers": [{
            "name": "c", "image": "busybox",
            "command": ["sh", "-c", "mkdir -p /tmp; touch /tmp/alive; sleep 2; touch /tmp/ready; sleep 2; "
                        "rm /tmp/alive; sleep 3600"],
            "readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/ready"]}, "periodSeconds": 1},
            "livenessProbe": {"exec": {"command": ["test", "-f", "/tmp/alive"]}, "periodSeconds": 1,
                              "failureThreshold": 2},
        }]}})

    def ready():
        p = core.read_namespaced_pod("probed", "default")
        return p.status.container_statuses and p.status.container_statuses[0].ready

    p = wait_for(lambda: (lambda p: p if p.status.phase == "Running" else None)(
        core.read_namespaced_pod("probed", "default")), what="Running")
    assert not p.status.container_statuses[0].ready, "not ready before the readiness probe passes"
    wait_for(ready, 30, "ready once /tmp/ready exists")
    wait_for(lambda: core.read_namespaced_pod("probed", "default").status.container_statuses[0].restart_count >= 1,
             60, "a restart after the liveness probe fails")
    reasons = [(e.reason, e.message) for e in core.list_namespaced_event(
        "default", field_selector="involvedObject.name=probed").items]
    assert any(r == "Unhealthy" and "Liveness probe failed" in m for r, m in reasons), reasons
    assert any(r == "Killing" and "liveness" in m for r, m in reasons), reasons
    core.delete_namespaced_pod("probed", "default")


def test_a_second_scheduler_by_schedulerName_and_connect_to_an_existing_cluster(cluster):
    import asyncio
    import threading

    from labkit.client import Client
    from labkit.controlplane.scheduler.scheduler import Scheduler

    other = Cluster.connect(cluster.kubeconfig)  # the way labs attach to kind/k3s/a cloud cluster
    core = other.core()
    core.create_namespaced_pod("default", {"metadata": {"name": "picky"}, "spec": {
        "schedulerName": "labkit-scheduler", "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}})
    time.sleep(1.0)
    assert core.read_namespaced_pod("picky", "default").spec.node_name is None, \
        "the default scheduler leaves pods of another schedulerName alone"

    stop = threading.Event()

    async def run_second():
        client = Client(cluster.kubeconfig)
        task = asyncio.create_task(Scheduler(client, "labkit-scheduler").run())
        while not stop.is_set():
            await asyncio.sleep(0.1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()

    t = threading.Thread(target=lambda: asyncio.run(run_second()), daemon=True)
    t.start()
    try:
        pod = wait_for(lambda: (lambda p: p if p.spec.node_name else None)(core.read_namespaced_pod("picky", "default")),
                       30, "the second scheduler binds its pod")
        events = core.list_namespaced_event("default", field_selector="involvedObject.name=picky").items
        assert any(e.reason == "Scheduled" and e.source.component == "labkit-scheduler" for e in events)
        assert pod.metadata.annotations and "scheduler.labkit.dev/why" in pod.metadata.annotations
    finally:
        stop.set()
        t.join(10)
        core.delete_namespaced_pod("picky", "default")


def test_configmap_volume_waits_for_its_configmap_then_mounts_it(cluster):
    core = cluster.core()
    core.create_namespaced_pod("default", {"metadata": {"name": "reader"}, "spec": {
        "terminationGracePeriodSeconds": 0,
        "volumes": [{"name": "cfg", "configMap": {"name": "greeting"}}, {"name": "scratch", "emptyDir": {}}],
        "containers": [{"name": "c", "image": "busybox",
                        "command": ["sh", "-c", "cat /etc/greeting/text; echo pod=$POD; sleep 3600"],
                        "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                        "volumeMounts": [{"name": "cfg", "mountPath": "/etc/greeting"},
                                         {"name": "scratch", "mountPath": "/scratch"}]}]}})
    wait_for(lambda: any(e.reason == "FailedMount" for e in core.list_namespaced_event(
        "default", field_selector="involvedObject.name=reader").items), 30, "a FailedMount event")
    assert core.read_namespaced_pod("reader", "default").status.phase == "Pending"
    core.create_namespaced_config_map("default", {"metadata": {"name": "greeting"}, "data": {"text": "hello, volume"}})
    wait_for(lambda: core.read_namespaced_pod("reader", "default").status.phase == "Running", 60, "Running")
    log = wait_for(lambda: "pod=" in core.read_namespaced_pod_log("reader", "default")
                   and core.read_namespaced_pod_log("reader", "default"), 30, "log lines")
    assert "hello, volume" in log and "pod=reader" in log
    core.delete_namespaced_pod("reader", "default")
    core.delete_namespaced_config_map("greeting", "default")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_a_rollout_that_cannot_progress_hits_its_deadline(cluster, tmp_path):
    body = deployment("stuck", 1, image="no-such-image-anywhere:404")
    body["spec"]["progressDeadlineSeconds"] = 3
    f = tmp_path / "stuck.yaml"
    f.write_text(yaml.safe_dump(body))
    kubectl(cluster, "apply", "-f", str(f))
    out = subprocess.run([KUBECTL, "--kubeconfig", cluster.kubeconfig, "rollout", "status", "deployment/stuck",
                          "--timeout=60s"], capture_output=True, text=True, timeout=90)
    assert out.returncode != 0
    assert "exceeded its progress deadline" in out.stderr + out.stdout
    pod = cluster.core().list_namespaced_pod("default", label_selector="app=stuck").items[0]
    assert pod.status.container_statuses[0].state.waiting.reason == "ErrImagePull"
    kubectl(cluster, "delete", "deployment", "stuck")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_orphan_delete_keeps_pods_and_a_new_deployment_adopts_them(cluster, tmp_path):
    core = cluster.core()
    f = tmp_path / "keep.yaml"
    f.write_text(yaml.safe_dump(deployment("adopt", 2)))
    kubectl(cluster, "apply", "-f", str(f))
    before = {p.metadata.name for p in wait_for(lambda: len(running_pods(core, "app=adopt")) == 2
                                                and running_pods(core, "app=adopt"), what="2 pods")}
    kubectl(cluster, "delete", "deployment", "adopt", "--cascade=orphan")
    wait_for(lambda: not cluster.apps().list_namespaced_deployment("default").items
             or all(d.metadata.name != "adopt" for d in cluster.apps().list_namespaced_deployment("default").items),
             what="the deployment gone")
    rs = wait_for(lambda: [r for r in cluster.apps().list_namespaced_replica_set("default", label_selector="app=adopt").items
                           if not r.metadata.owner_references], 30, "an orphaned replica set")
    assert {p.metadata.name for p in running_pods(core, "app=adopt")} == before, "orphaned pods keep running"
    kubectl(cluster, "apply", "-f", str(f))
    wait_for(lambda: all(r.metadata.owner_references for r in cluster.apps().list_namespaced_replica_set(
        "default", label_selector="app=adopt").items), 30, "the new deployment adopting the replica set")
    assert {p.metadata.name for p in running_pods(core, "app=adopt")} == before, "same pods, not new ones"
    assert rs[0].metadata.name in {r.metadata.name for r in cluster.apps().list_namespaced_replica_set(
        "default", label_selector="app=adopt").items}
    kubectl(cluster, "delete", "deployment", "adopt")
