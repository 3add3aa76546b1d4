"""Lab 12's exercises: steer the scheduler with taints, tolerations and node selectors."""

from __future__ import annotations

from labkit.practice import Exercise, Target, Verdict

TAINT = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}


def _last_node(t: Target) -> str:
    return sorted(n.metadata.name for n in t.core.list_node().items)[-1]


def _taint_last_node(t: Target) -> None:
    node = _last_node(t)
    taints = [x for x in (t.core.read_node(node).spec.taints or []) if x.key != TAINT["key"]]
    t.core.patch_node(node, {"spec": {"taints": [*(x.to_dict() for x in taints), TAINT]}})


def _untaint_last_node(t: Target) -> None:
    node = _last_node(t)
    taints = [x.to_dict() for x in (t.core.read_node(node).spec.taints or []) if x.key != TAINT["key"]]
    t.core.patch_node(node, {"spec": {"taints": taints or None}})


def _verify_on_tainted(t: Target) -> Verdict:
    node = _last_node(t)
    try:
        pod = t.core.read_namespaced_pod("gpu-job", t.namespace)
    except Exception:
        return Verdict.not_yet(f"there is no pod 'gpu-job' in namespace {t.namespace!r} yet")
    tolerates = any(x.key == TAINT["key"] and x.effect in (None, "NoSchedule") for x in pod.spec.tolerations or [])
    if not tolerates:
        return Verdict.not_yet(f"gpu-job has no toleration for the taint dedicated=gpu:NoSchedule on {node}")
    if pod.spec.node_name != node:
        return Verdict.not_yet(f"gpu-job tolerates the taint but was placed on {pod.spec.node_name or 'no node yet'};"
                               f" a toleration only allows {node}, it does not ask for it: add a nodeSelector")
    if pod.status.phase != "Running":
        return Verdict.not_yet(f"gpu-job is on {node} but {pod.status.phase}, not Running yet")
    return Verdict.ok(f"gpu-job runs on the tainted node {node}")


def _solve_on_tainted(t: Target) -> None:
    node = _last_node(t)
    t.core.create_namespaced_pod(t.namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "gpu-job"},
        "spec": {"nodeSelector": {"kubernetes.io/hostname": node},
                 "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
                 "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}})


EXERCISES = [
    Exercise(
        id="12.1",
        title="Get a pod onto the tainted node",
        statement="""The last node (by name) carries the taint `dedicated=gpu:NoSchedule`. Create a pod
named `gpu-job` (image `busybox`, command `sleep 3600`) that runs **on that node**. A toleration
alone is not enough: think about what makes the scheduler *choose* a node.""",
        setup=_taint_last_node,
        verify=_verify_on_tainted,
        solution=_solve_on_tainted,
        solution_text="""A toleration for the taint plus a nodeSelector on the node's hostname label:

```yaml
spec:
  nodeSelector: {kubernetes.io/hostname: node-3}
  tolerations: [{key: dedicated, operator: Equal, value: gpu, effect: NoSchedule}]
```""",
        cleanup=_untaint_last_node,
        concept="taints and tolerations",
        difficulty="medium",
        cluster={"nodes": 2},
    ),
]
