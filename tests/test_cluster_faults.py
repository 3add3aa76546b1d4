"""Faults a user can cause: a node disappears, a component is killed and started again."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from support.cluster import deployment, running_pods, wait_for

from labkit.cluster import Cluster

pytestmark = pytest.mark.slow


def test_lost_node_is_tainted_and_its_pods_are_replaced_elsewhere():
    with Cluster(nodes=3, store="memory", processes=True, node_grace=4, eviction_seconds=1,
                 lease_interval=1) as c:
        core, apps = c.core(), c.apps()
        apps.create_namespaced_deployment("default", deployment("keep", 4))
        pods = wait_for(lambda: len(running_pods(core, "app=keep")) == 4 and running_pods(core, "app=keep"),
                        what="4 running pods")
        victim = pods[0].spec.node_name
        c.kill(f"kubelet-{victim}")  # the node goes silent: no more Lease renewals

        def tainted():
            n = core.read_node(victim)
            ready = next(x for x in n.status.conditions if x.type == "Ready")
            return ready.status == "Unknown" and any(
                t.key == "node.kubernetes.io/unreachable" and t.effect == "NoExecute" for t in n.spec.taints or [])

        wait_for(tainted, 30, "node marked Unknown and tainted unreachable")
        wait_for(lambda: len(running_pods(core, "app=keep")) == 4
                 and all(p.spec.node_name != victim for p in running_pods(core, "app=keep")),
                 60, "4 running pods, none on the lost node")
        reasons = {e.reason for e in core.list_namespaced_event("default").items}
        assert {"NodeNotReady", "TaintManagerEviction"} <= reasons

        c.start_component(f"kubelet-{victim}")  # the node comes back: taint goes away
        wait_for(lambda: not any(t.key == "node.kubernetes.io/unreachable"
                                 for t in core.read_node(victim).spec.taints or []), 30, "taint removed")


def test_killed_components_restart_and_converge_without_losing_anything():
    with Cluster(nodes=2, store="sqlite", processes=True) as c:
        core, apps = c.core(), c.apps()
        apps.create_namespaced_deployment("default", deployment("calm", 2))
        before = wait_for(lambda: len(running_pods(core, "app=calm")) == 2 and running_pods(core, "app=calm"),
                          what="2 running pods")
        ids = {p.metadata.name: p.status.container_statuses[0].container_id for p in before}

        c.kill("controller-manager")
        apps.patch_namespaced_deployment_scale("calm", "default", {"spec": {"replicas": 3}})
        c.kill("scheduler")
        c.start_component("controller-manager")
        c.start_component("scheduler")
        wait_for(lambda: len(running_pods(core, "app=calm")) == 3, 60, "scale-up done after restarts")

        node = before[0].spec.node_name
        c.kill(f"kubelet-{node}")
        c.start_component(f"kubelet-{node}")
        wait_for(lambda: core.read_node(node).status.conditions
                 and all(p.status.container_statuses[0].container_id == ids[p.metadata.name]
                         for p in running_pods(core, "app=calm") if p.metadata.name in ids)
                 and len(running_pods(core, "app=calm")) == 3, 60,
                 "the restarted kubelet adopts its running containers (same container IDs)")

        c.kill("apiserver")
        c.kill(f"kubelet-{node}")
        c.start_component(f"kubelet-{node}")  # a kubelet starting while the API is down waits for it
        time.sleep(1.5)
        assert c.components[f"kubelet-{node}"].alive, "the kubelet gave up while the apiserver was down"
        c.start_component("apiserver")
        wait_for(lambda: len(running_pods(core, "app=calm")) == 3, 60, "state survives an apiserver restart")
        # every component rode out the outage (a kubelet still starting up when the API vanished included)
        assert [s["component"] for s in c.status() if not s["alive"]] == []
        apps.delete_namespaced_deployment("calm", "default")
        wait_for(lambda: not core.list_namespaced_pod("default", label_selector="app=calm").items, 60,
                 "pods garbage-collected")


def test_cli_up_status_down_leaves_nothing_behind(tmp_path):
    name = f"t{os.getpid()}"
    kc = tmp_path / "kubeconfig"
    env = {**os.environ}
    cli = [sys.executable, "-m", "labkit.cli", "cluster"]
    up = subprocess.run([*cli, "up", "--nodes", "1", "--name", name, "--store", "memory", "--kubeconfig", str(kc)],
                        capture_output=True, text=True, timeout=120, env=env)
    try:
        assert up.returncode == 0, up.stderr
        assert f"export KUBECONFIG={kc}" in up.stdout
        st = subprocess.run([*cli, "status", "--name", name], capture_output=True, text=True, timeout=30)
        assert "node-1" in st.stdout and "Ready=True" in st.stdout
        again = subprocess.run([*cli, "up", "--nodes", "1", "--name", name], capture_output=True, text=True,
                               timeout=60)
        assert again.returncode != 0 and "already up" in again.stderr
    finally:
        down = subprocess.run([*cli, "down", "--name", name], capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    left = subprocess.run(["pgrep", "-f", f"clusters/{name}/"], capture_output=True, text=True)
    assert left.stdout.strip() == ""
    bad = subprocess.run([*cli, "status", "--name", name], capture_output=True, text=True)
    assert bad.returncode != 0 and "labkit cluster up" in bad.stderr and "Traceback" not in bad.stderr
