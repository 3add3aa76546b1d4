"""Lab 24's exercises: what a node's runtime swap rests on.

A swap needs the node's work moved away first (drain), and it works because the kubelet keeps
comparing what the Master wants with what the runtime reports over CRI, and repairs the
difference. Verify reads the cluster through the official client and, for 24.3, the node's
runtime itself over its CRI socket.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labkit.practice import Exercise, Target, Verdict
from labkit.practice.proof import wait_until

NODE = "node-1"


def _app_pods(t: Target) -> list[Any]:
    return [p for p in t.core.list_namespaced_pod(t.namespace, label_selector="app=app").items
            if not p.metadata.deletion_timestamp]


# --- 24.1: which runtime runs a pod ---------------------------------------------------------
def _verify_pinned(t: Target) -> Verdict:
    pods = [p for p in t.core.list_namespaced_pod(t.namespace).items if p.metadata.name == "pinned"]
    if not pods:
        return Verdict.not_yet(f"there is no pod pinned in {t.namespace!r} yet")
    pod = pods[0]
    if pod.spec.node_name != "node-2":
        return Verdict.not_yet(f"pinned is on {pod.spec.node_name or 'no node yet'}; put it on node-2 yourself "
                               "(spec.nodeName: the scheduler is not asked then)")
    statuses = pod.status.container_statuses or []
    if pod.status.phase != "Running" or not statuses or not statuses[0].container_id:
        return Verdict.not_yet(f"pinned is {pod.status.phase}; wait until it runs")
    info = t.core.read_node("node-2").status.node_info
    runtime = (info.container_runtime_version if info else "").split("://", 1)[0]
    scheme = statuses[0].container_id.split("://", 1)[0]
    if scheme != runtime:
        return Verdict.not_yet(f"pinned's container is {scheme}://… but node-2 reports {runtime}; wait a moment")
    return Verdict.ok(f"pinned runs on node-2 in the {runtime} runtime (containerID {statuses[0].container_id[:24]}…)")


def _solve_pinned(t: Target) -> None:
    t.core.create_namespaced_pod(t.namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pinned"},
        "spec": {"nodeName": "node-2", "terminationGracePeriodSeconds": 0,
                 "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}})


# --- 24.2: drain the node before its runtime goes ---------------------------------------------
def _verify_drain(t: Target) -> Verdict:
    from kubernetes.client.rest import ApiException

    try:
        dep = t.apps.read_namespaced_deployment("app", t.namespace)
    except ApiException as err:
        if err.status == 404:
            return Verdict.not_yet(f"there is no Deployment app in {t.namespace!r} yet (2 replicas, label app=app)")
        raise
    if not t.core.read_node(NODE).spec.unschedulable:
        return Verdict.not_yet(f"{NODE} still accepts new pods: cordon it first (kubectl cordon {NODE})")
    on_node = [p.metadata.name for p in _app_pods(t) if p.spec.node_name == NODE]
    if on_node:
        return Verdict.not_yet(f"{NODE} is cordoned, but {', '.join(on_node)} still run there: evict them "
                               "(kubectl drain, or delete them and let the Deployment replace them)")
    want = dep.spec.replicas or 0
    if want < 2 or (dep.status.available_replicas or 0) < want:
        return Verdict.not_yet(f"app has {dep.status.available_replicas or 0} of {want} replicas available; it "
                               "needs 2, all running elsewhere")
    return Verdict.ok(f"{NODE} is cordoned and empty of app's pods; app still has {want} available replicas")


def _solve_drain(t: Target) -> None:
    t.apps.create_namespaced_deployment(t.namespace, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "app"}},
                 "template": {"metadata": {"labels": {"app": "app"}},
                              "spec": {"terminationGracePeriodSeconds": 0,
                                       "containers": [{"name": "app", "image": "busybox",
                                                       "command": ["sleep", "3600"]}]}}}})
    wait_until("app to be available", lambda: (t.apps.read_namespaced_deployment("app", t.namespace).status
                                          .available_replicas or 0) == 2)
    t.core.patch_node(NODE, {"spec": {"unschedulable": True}})
    for p in _app_pods(t):
        if p.spec.node_name == NODE:
            t.core.delete_namespaced_pod(p.metadata.name, t.namespace, grace_period_seconds=0)


def _uncordon(t: Target) -> None:
    t.core.patch_node(NODE, {"spec": {"unschedulable": None}})


# --- 24.3: a container stopped behind the kubelet's back ------------------------------------------
def _runtime_for(t: Target, node: str) -> Any:
    """The node's CRI server, as crictl would reach it (labkit puts the socket beside the kubeconfig)."""
    from labkit.node.cri import RemoteRuntime

    sock = Path(t.kubeconfig or "").parent / f"{node}-cri.sock"
    return RemoteRuntime(f"unix://{sock}")


def _running_in_runtime(t: Target, pod: Any) -> list[str]:
    """Ids of the pod's running containers, as the node's runtime lists them."""
    rt = _runtime_for(t, pod.spec.node_name)
    try:
        sandboxes = [s for s in rt.list_pod_sandboxes()
                     if s.name == pod.metadata.name and s.namespace == t.namespace and s.state == "SANDBOX_READY"]
        return [c.id for s in sandboxes for c in rt.list_containers(s.id) if c.state == "CONTAINER_RUNNING"]
    finally:
        rt.close()


def _verify_repaired(t: Target) -> Verdict:
    pods = [p for p in t.core.list_namespaced_pod(t.namespace).items if p.metadata.name == "steady"]
    if not pods:
        return Verdict.not_yet(f"there is no pod steady in {t.namespace!r} yet")
    pod = pods[0]
    statuses = pod.status.container_statuses or []
    if pod.status.phase != "Running" or not statuses:
        return Verdict.not_yet(f"steady is {pod.status.phase}; wait until it runs")
    st = statuses[0]
    if (st.restart_count or 0) < 1 or not (st.last_state and st.last_state.terminated):
        return Verdict.not_yet("steady's container has never stopped: stop it through the node's runtime (CRI "
                               "StopContainer, as `crictl stop ID` does), not through the apiserver")
    if not st.state.running:
        return Verdict.not_yet("steady's container stopped; the kubelet has not started the new one yet")
    now = (st.container_id or "").split("://", 1)[-1]
    running = _running_in_runtime(t, pod)
    if now not in running:
        return Verdict.not_yet(f"the apiserver says {now[:12]} runs, but the runtime on {pod.spec.node_name} runs "
                               f"{[c[:12] for c in running]}; wait for the kubelet's next status")
    old = (st.last_state.terminated.container_id or "").split("://", 1)[-1]
    return Verdict.ok(f"the runtime stopped {old[:12] or 'the first container'}; the kubelet saw it and started "
                      f"{now[:12]} (restartCount {st.restart_count})")


def _solve_repaired(t: Target) -> None:
    t.core.create_namespaced_pod(t.namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "steady"},
        "spec": {"terminationGracePeriodSeconds": 0,
                 "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}})
    wait_until("steady to run", lambda: t.core.read_namespaced_pod("steady", t.namespace).status.phase == "Running")
    pod = t.core.read_namespaced_pod("steady", t.namespace)
    rt = _runtime_for(t, pod.spec.node_name)
    try:
        for cid in _running_in_runtime(t, pod):
            rt.stop_container(cid, timeout=1)
    finally:
        rt.close()


EXERCISES = [
    Exercise(
        id="24.1",
        title="Which runtime runs this pod?",
        statement="""Place a pod **pinned** (busybox, `sleep 3600`) on **node-2** yourself, without the
scheduler, and find out from the API which runtime runs it: the prefix of its `containerID`
(`native://`, `docker://`, `runc://` …) and node-2's `containerRuntimeVersion` must agree.""",
        verify=_verify_pinned,
        solution=_solve_pinned,
        solution_text="""```yaml
apiVersion: v1
kind: Pod
metadata: {name: pinned}
spec:
  nodeName: node-2
  containers: [{name: main, image: busybox, command: [sleep, "3600"]}]
```
then `kubectl get pod pinned -o jsonpath='{.status.containerStatuses[0].containerID}'` and
`kubectl get node node-2 -o jsonpath='{.status.nodeInfo.containerRuntimeVersion}'`.""",
        concept="the runtime behind a node",
        difficulty="easy",
        cluster={"nodes": 2},
        needs=("root",),
        timeout=30,
    ),
    Exercise(
        id="24.2",
        title="Drain the node before its runtime goes",
        statement=f"""Before a node's runtime is swapped, its work has to go elsewhere. Run a Deployment
**app** (2 replicas of busybox `sleep 3600`, label `app=app`), then **drain {NODE}**: no new pods may land
there and none of app's pods may run there, while app keeps 2 available replicas on the other nodes.
(Undo it afterwards with `kubectl uncordon {NODE}`.)""",
        verify=_verify_drain,
        solution=_solve_drain,
        solution_text=f"""```
kubectl create deployment app --image=busybox --replicas=2 -- sleep 3600
kubectl cordon {NODE}
kubectl delete pod -l app=app --field-selector spec.nodeName={NODE}
```
(`kubectl drain {NODE} --ignore-daemonsets` does both steps, through the Eviction API.)""",
        cleanup=_uncordon,
        concept="cordon and drain",
        difficulty="medium",
        cluster={"nodes": 2},
        needs=("root",),
        timeout=45,
    ),
    Exercise(
        id="24.3",
        title="Stop a container behind the kubelet's back",
        statement="""Run a pod **steady** (busybox, `sleep 3600`). Then go around the apiserver: talk to
its node's runtime over CRI, the socket the kubelet uses (`crictl --runtime-endpoint
unix://CLUSTER_DIR/NODE-cri.sock`, or `labkit.node.cri.RemoteRuntime` in Python), and **stop** the
container. Nobody tells the Master; the check wants to see the kubelet notice from what the runtime
reports, start a new container, and the runtime itself list that new container as running.""",
        verify=_verify_repaired,
        solution=_solve_repaired,
        solution_text="""```python
from labkit.node.cri import RemoteRuntime
node = core.read_namespaced_pod("steady", "default").spec.node_name
rt = RemoteRuntime(f"unix://{c.dir}/{node}-cri.sock")
sb = next(s for s in rt.list_pod_sandboxes() if s.name == "steady" and s.state == "SANDBOX_READY")
for ctr in rt.list_containers(sb.id):
    if ctr.state == "CONTAINER_RUNNING":
        rt.stop_container(ctr.id, timeout=1)
```
(or `crictl ps --name main`, then `crictl stop ID`).""",
        concept="the kubelet reconciles runtime state",
        difficulty="hard",
        cluster={"nodes": 2},
        needs=("root",),
        timeout=45,
    ),
]
