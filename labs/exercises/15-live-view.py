"""Lab 15's exercises: make the live view show each state a pod and a node can be in."""

from __future__ import annotations

import time

from labkit.practice import Exercise, Target, Verdict

UNSCHEDULABLE = "node.kubernetes.io/unschedulable"


def _last_node(t: Target) -> str:
    return sorted(n.metadata.name for n in t.core.list_node().items)[-1]


# ---------------------------------------------------------------------------- 15.1 a blue chip
def _verify_succeeded(t: Target) -> Verdict:
    pod = t.pod("once")
    if pod is None:
        return Verdict.not_yet(f"there is no pod 'once' in namespace {t.namespace!r}")
    if pod.spec.restart_policy == "Always":
        return Verdict.not_yet("once has restartPolicy Always: the kubelet restarts it whenever it exits, so it"
                               " can never be Succeeded")
    if pod.status.phase != "Succeeded":
        return Verdict.not_yet(f"once is {pod.status.phase}, not Succeeded yet")
    code = [s.state.terminated.exit_code for s in pod.status.container_statuses or []
            if s.state and s.state.terminated]
    return Verdict.ok(f"once ran to completion (exit code {code[0] if code else 0}) and stays as a Succeeded pod")


def _solve_succeeded(t: Target) -> None:
    t.core.create_namespaced_pod(t.namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "once"},
        "spec": {"restartPolicy": "Never",
                 "containers": [{"name": "app", "image": "busybox", "command": ["echo", "done"]}]}})


# ---------------------------------------------------------------------------- 15.2 cordon and drain
def _setup_spread(t: Target) -> None:
    t.apps.create_namespaced_deployment(t.namespace, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "spread"},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "spread"}},
                 "template": {"metadata": {"labels": {"app": "spread"}},
                              "spec": {"terminationGracePeriodSeconds": 0,
                                       "containers": [{"name": "app", "image": "busybox",
                                                       "command": ["sleep", "3600"]}]}}}})


def _uncordon_last_node(t: Target) -> None:
    node = _last_node(t)
    taints = [x.to_dict() for x in (t.core.read_node(node).spec.taints or []) if x.key != UNSCHEDULABLE]
    t.core.patch_node(node, {"spec": {"unschedulable": None, "taints": taints or None}})


def _verify_drained(t: Target) -> Verdict:
    node = _last_node(t)
    if not t.core.read_node(node).spec.unschedulable:
        return Verdict.not_yet(f"{node} is not cordoned: it still takes new pods")
    pods = [p for p in t.core.list_namespaced_pod(t.namespace, label_selector="app=spread").items
            if not p.metadata.deletion_timestamp and p.status.phase not in ("Succeeded", "Failed")]
    if not pods:
        return Verdict.not_yet(f"there are no pods of the Deployment 'spread' in namespace {t.namespace!r}")
    left = [p.metadata.name for p in pods if p.spec.node_name == node]
    if left:
        return Verdict.not_yet(f"{node} is cordoned, but {', '.join(left)} still run there: a cordon only stops"
                               " new pods; move these off")
    running = [p for p in pods if p.status.phase == "Running"]
    if len(running) < 4:
        return Verdict.not_yet(f"{node} is empty of spread's pods; {len(running)} of 4 run elsewhere so far")
    return Verdict.ok(f"{node} is cordoned and drained; spread's 4 pods run on"
                      f" {', '.join(sorted({p.spec.node_name for p in running}))}")


def _solve_drain(t: Target) -> None:
    node = _last_node(t)
    taints = [x.to_dict() for x in (t.core.read_node(node).spec.taints or []) if x.key != UNSCHEDULABLE]
    t.core.patch_node(node, {"spec": {"unschedulable": True,
                                      "taints": [*taints, {"key": UNSCHEDULABLE, "effect": "NoSchedule"}]}})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the Deployment's pods may still be on their way to the node
        pods = t.core.list_namespaced_pod(t.namespace, label_selector="app=spread").items
        on_node = [p for p in pods if p.spec.node_name == node and not p.metadata.deletion_timestamp]
        for p in on_node:
            t.core.delete_namespaced_pod(p.metadata.name, t.namespace)
        if len([p for p in pods if p.spec.node_name]) >= 4 and not on_node:
            return
        time.sleep(0.3)


# ---------------------------------------------------------------------------- 15.3 stuck Terminating
def _verify_stuck(t: Target) -> Verdict:
    pod = t.pod("stuck")
    if pod is None:
        return Verdict.not_yet(f"there is no pod 'stuck' in namespace {t.namespace!r} (if you deleted it and it is"
                               " gone, nothing held it: create it again)")
    if not pod.metadata.finalizers:
        return Verdict.not_yet("stuck has no finalizers: nothing will hold it once it is deleted")
    if not pod.metadata.deletion_timestamp:
        return Verdict.not_yet("stuck carries a finalizer; now delete it")
    return Verdict.ok(f"stuck was deleted at {pod.metadata.deletion_timestamp:%H:%M:%S} and is still there,"
                      f" held by {', '.join(pod.metadata.finalizers)}: the view shows it grey, Terminating")


def _solve_stuck(t: Target) -> None:
    t.core.create_namespaced_pod(t.namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stuck", "finalizers": ["example.com/hold"]},
        "spec": {"terminationGracePeriodSeconds": 0,
                 "containers": [{"name": "app", "image": "busybox", "command": ["sleep", "3600"]}]}})
    t.core.delete_namespaced_pod("stuck", t.namespace)


def _release_stuck(t: Target) -> None:
    if t.pod("stuck") is not None:
        t.core.patch_namespaced_pod("stuck", t.namespace, {"metadata": {"finalizers": None}})


EXERCISES = [
    Exercise(
        id="15.1",
        title="A pod that finishes",
        statement="""With the view running, create a pod `once` (image `busybox`) that runs one command and
**ends Succeeded**: a blue chip that stays. Which field of the pod decides whether the kubelet
starts it again when its command exits?""",
        verify=_verify_succeeded,
        solution=_solve_succeeded,
        solution_text="""`restartPolicy: Never` (or `OnFailure`); with the default `Always` the kubelet restarts it:

```console
$ kubectl run once --image=busybox --restart=Never -- echo done
```""",
        concept="pod phases and restartPolicy",
        difficulty="easy",
        cluster={"nodes": 2},
    ),
    Exercise(
        id="15.2",
        title="Cordon and drain a node",
        statement="""The Deployment `spread` runs 4 pods over the nodes. Take the **last node** (by name) out of
service: cordon it so that it takes no new pods, then move `spread`'s pods off it. Watch the view:
in what order do the chips leave the node and appear elsewhere? The check passes when the node is
cordoned and all 4 pods run on other nodes.""",
        setup=_setup_spread,
        verify=_verify_drained,
        solution=_solve_drain,
        solution_text="""```console
$ kubectl cordon node-2
$ kubectl delete pod -l app=spread --field-selector spec.nodeName=node-2
$ kubectl uncordon node-2      # afterwards, to give the node back
```
(`kubectl drain` does both steps, through the Eviction API, which labkit does not serve.)""",
        cleanup=_uncordon_last_node,
        concept="cordon, drain and the ReplicaSet",
        difficulty="medium",
        cluster={"nodes": 2},
    ),
    Exercise(
        id="15.3",
        title="A pod stuck Terminating",
        statement="""Make the view show a grey chip that does not go away: a pod `stuck` that has been
**deleted but still exists**. A deleted object stays in the API while anything in its
`metadata.finalizers` is left; the apiserver only sets `deletionTimestamp`. Afterwards, release it
by removing the finalizer, and watch the chip disappear.""",
        verify=_verify_stuck,
        solution=_solve_stuck,
        solution_text="""```console
$ kubectl run stuck --image=busybox --overrides='{"metadata":{"finalizers":["example.com/hold"]}}' -- sleep 3600
$ kubectl delete pod stuck --grace-period=1 --wait=false
$ kubectl get pod stuck          # still there, Terminating, long after its 1 s grace period
$ kubectl patch pod stuck --type=merge -p '{"metadata":{"finalizers":null}}'   # gone
```""",
        cleanup=_release_stuck,
        concept="deletion, finalizers and Terminating",
        difficulty="medium",
        cluster={"nodes": 2},
    ),
]
