"""Named faults (``labkit chaos``): each one breaks the cluster, then undoes itself, and the cluster
converges again with nothing acknowledged lost and nothing of the fault left on the host.

One cluster for the whole file (two nodes, its sqlite store on a small tmpfs). A ConfigMap is
written before and during every fault; the last test reads every acknowledged one back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from support.cluster import deployment, running_pods, wait_for

from labkit import chaos, paths
from labkit.chaos.journal import records_dir
from labkit.cluster import Cluster
from labkit.runtime import gc

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (paths.is_root() and os.path.exists("/usr/lib/cni/bridge")),
                       reason="faults change namespaces, firewall rules and mounts: root and CNI plugins needed"),
]

ACKED: list[str] = []  # every ConfigMap the apiserver acknowledged


def _ack(core, tag: str) -> None:
    """Write a ConfigMap; remember it only when the apiserver said it was stored."""
    from kubernetes.client.exceptions import ApiException

    name = f"ack-{len(ACKED)}-{tag}"
    try:
        core.create_namespaced_config_map("default", {"metadata": {"name": name}, "data": {"tag": tag}})
    except ApiException:
        return
    ACKED.append(name)


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _ready(core, node: str) -> str:
    return next(c.status for c in core.read_node(node).status.conditions if c.type == "Ready")


def _rules(netns: str | None = None) -> str:
    argv = ["iptables", "-w", "-S"]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout


@pytest.fixture(scope="module")
def cluster():
    disk = chaos.small_disk("24m")
    c = Cluster(nodes=2, store=f"sqlite:{disk}/store.db", processes=True, node_grace=3, eviction_seconds=30,
                lease_interval=1, max_requests_inflight=40)  # a limit a burst of 120 clients passes
    try:
        c.start()
        core, apps = c.core(), c.apps()
        apps.create_namespaced_deployment("default", deployment("web", 2))
        wait_for(lambda: len(running_pods(core, "app=web")) == 2, 60, "2 running web pods")
        yield c
    finally:
        c.stop()
        chaos.remove_small_disk(disk)
    assert not os.path.ismount(disk), "the store's tmpfs is still mounted"
    assert not list(records_dir().glob("*.json")), "a fault left its record (something was not undone)"


def test_pod_kill_deletes_a_pod_and_its_deployment_replaces_it(cluster):
    core = cluster.core()
    _ack(core, "before-pod-kill")
    f = chaos.inject(cluster, "pod-kill", target="app=web", duration=0)
    victim = f.victim.split("/")[1]
    _ack(core, "after-pod-kill")
    wait_for(lambda: len(running_pods(core, "app=web")) == 2
             and victim not in {p.metadata.name for p in running_pods(core, "app=web")}, 60,
             "two running web pods again, the killed one replaced")


def test_container_kill_is_restarted_by_the_kubelet(cluster):
    core = cluster.core()
    f = chaos.inject(cluster, "container-kill", target="app=web", duration=0)
    ns, name = f.victim.split("/")
    wait_for(lambda: core.read_namespaced_pod(name, ns).status.container_statuses[0].restart_count
             > f.restarts_before and core.read_namespaced_pod(name, ns).status.container_statuses[0].ready,
             60, "the same pod running again, its restart count up by one")


def test_process_pause_stops_the_scheduler_and_continues_it(cluster):
    core = cluster.core()
    pid = cluster.components["scheduler"].pid
    pod = {"metadata": {"name": "while-paused"},
           "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}],
                    "terminationGracePeriodSeconds": 1}}
    with chaos.fault(cluster, "process-pause", target="scheduler"):
        assert _state(pid) == "T"
        core.create_namespaced_pod("default", pod)
        _ack(core, "during-pause")
        time.sleep(1)
        assert not core.read_namespaced_pod("while-paused", "default").spec.node_name, "a paused scheduler bound it"
    assert _state(pid) != "T"
    wait_for(lambda: core.read_namespaced_pod("while-paused", "default").spec.node_name, 30,
             "the pod scheduled once the scheduler runs again")
    core.delete_namespaced_pod("while-paused", "default", grace_period_seconds=0)


def test_node_down_turns_the_node_not_ready_and_back(cluster):
    core = cluster.core()
    old = cluster.components["kubelet-node-1"].pid
    with chaos.fault(cluster, "node-down", target="node-1"):
        assert not cluster.components["kubelet-node-1"].alive
        _ack(core, "during-node-down")
        wait_for(lambda: _ready(core, "node-1") != "True", 30, "node-1 not Ready while its kubelet is down")
    assert cluster.components["kubelet-node-1"].alive and cluster.components["kubelet-node-1"].pid != old
    wait_for(lambda: _ready(core, "node-1") == "True", 60, "node-1 Ready again")
    wait_for(lambda: len(running_pods(core, "app=web")) == 2, 60, "two running web pods")


def test_node_drain_evicts_and_uncordons(cluster):
    core = cluster.core()
    with chaos.fault(cluster, "node-drain", target="node-2"):
        assert core.read_node("node-2").spec.unschedulable
        wait_for(lambda: len(running_pods(core, "app=web")) == 2
                 and all(p.spec.node_name == "node-1" for p in running_pods(core, "app=web")), 60,
                 "both web pods running on node-1")
        _ack(core, "during-drain")
    assert not core.read_node("node-2").spec.unschedulable


def test_network_partition_cuts_the_node_off_and_reconnects_it(cluster):
    from labkit.chaos.network import node_netns

    core = cluster.core()
    netns = node_netns(cluster, "node-2")
    host_before, ns_before = _rules(), _rules(netns)
    pid = cluster.components["kubelet-node-2"].pid
    cgroup_before = Path(f"/proc/{pid}/cgroup").read_text()
    with chaos.fault(cluster, "network-partition", target="node-2"):
        assert "labkit-chaos" in _rules(netns) and "labkit-chaos" in _rules()
        _ack(core, "during-partition")
        wait_for(lambda: _ready(core, "node-2") != "True", 30, "node-2 not Ready while cut off")
        assert cluster.components["kubelet-node-2"].alive, "the kubelet must survive a partition"
    assert (_rules(), _rules(netns)) == (host_before, ns_before), "the partition's rules were left"
    assert Path(f"/proc/{pid}/cgroup").read_text() == cgroup_before
    wait_for(lambda: _ready(core, "node-2") == "True", 60, "node-2 Ready again")


def test_network_loss_and_delay_on_a_pod(cluster):
    from labkit.chaos.network import pod_link

    pod = cluster.core().list_namespaced_pod("default", label_selector="app=web").items[0].to_dict()
    pod = {"metadata": pod["metadata"], "spec": {"nodeName": pod["spec"]["node_name"]},
           "status": {"podIP": pod["status"]["pod_ip"]}}
    node_ns, veth, pod_ns = pod_link(cluster, pod)
    name = pod["metadata"]["name"]
    have_netem, _ = chaos.netem_works()

    def applied() -> str:
        return (subprocess.run(["ip", "netns", "exec", node_ns, "tc", "qdisc", "show", "dev", veth],
                               capture_output=True, text=True).stdout + _rules(pod_ns))

    before = applied()
    with chaos.fault(cluster, "network-loss", target=name, loss_percent=30):
        assert ("netem" in applied()) if have_netem else ("statistic" in applied())
    assert applied() == before
    with chaos.fault(cluster, "network-delay", target=name, latency_ms=100) as f:
        assert ("delay 100" in applied()) if have_netem else ("NFQUEUE" in applied() and f.helper.poll() is None)
    if not have_netem:
        assert f.helper is None and "NFQUEUE" not in applied()
    assert applied() == before


def test_store_disk_full_refuses_writes_clearly_and_keeps_reading(cluster):
    core = cluster.core()
    _ack(core, "before-disk-full")
    url = cluster.url + "/api/v1/namespaces/default/configmaps"
    with chaos.fault(cluster, "store-disk-full", target="store"):
        answers = []
        for i in range(60):  # SQLite first fills the room it already has in its files
            req = urllib.request.Request(url, method="POST", headers={"Content-Type": "application/json"},
                                         data=json.dumps({"metadata": {"name": f"full-{i}"},
                                                          "data": {"x": "y" * 4096}}).encode())
            try:
                with urllib.request.urlopen(req, timeout=10):
                    ACKED.append(f"full-{i}")
            except urllib.error.HTTPError as exc:
                answers.append((exc.code, json.loads(exc.read())))
                break
        assert answers, "the store took 60 writes of 4 KiB on a full disk"
        code, status = answers[0]
        assert code == 503 and status["kind"] == "Status" and "database space exceeded" in status["message"]
        with urllib.request.urlopen(url, timeout=10) as r:  # reads still work
            assert r.status == 200 and json.loads(r.read())["items"]
        assert core.read_namespaced_config_map(ACKED[0], "default").data
    _ack(core, "after-disk-full")
    assert ACKED[-1].endswith("after-disk-full"), "writes still refused once the disk had room again"


def test_a_killed_fault_is_undone_by_gc_and_sigterm_undoes_it_at_once(cluster):
    pid = cluster.components["scheduler"].pid
    cli = [sys.executable, "-m", "labkit.cli", "chaos", "process-pause", "--cluster", cluster.name,
           "--target", "scheduler", "--duration", "120"]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        p = subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in p.stdout:
            if "holding" in line:
                break
        assert _state(pid) == "T"
        p.send_signal(sig)
        out = p.communicate(timeout=30)[0]
        if sig == signal.SIGTERM:
            assert "undone" in out and _state(pid) != "T"
        else:
            assert _state(pid) == "T"
            assert [x for x in gc.find_leaks(["chaos"]) if "process-pause" in x.what]
            gc.collect(["chaos"])
            assert _state(pid) != "T" and not gc.find_leaks(["chaos"])


def test_apiserver_overload_is_answered_with_429_and_retry_after_and_the_server_serves_on(cluster):
    f = chaos.inject(cluster, "apiserver-overload", target="apiserver", duration=2, clients=120)
    r = f.result
    assert r.sent > 0 and r.codes.get(429, 0) > 0, r.counts()
    assert r.no_retry_after == 0, "every 429 must carry Retry-After"
    assert not any(code >= 500 for code in r.codes), r.counts()
    assert cluster.core().list_namespace().items  # the server still serves
    assert any("429" in line for line in f.log)


def test_every_acknowledged_write_survived(cluster):
    core = cluster.core()
    _ack(core, "last")
    stored = {c.metadata.name for c in core.list_namespaced_config_map("default").items}
    assert len(ACKED) >= 8
    assert [n for n in ACKED if n not in stored] == []
    wait_for(lambda: len(running_pods(core, "app=web")) == 2, 60, "the Deployment at its 2 replicas")
    assert all(_ready(core, n) == "True" for n in ("node-1", "node-2"))
