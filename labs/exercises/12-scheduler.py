"""Lab 12's exercises: steer the scheduler with taints, tolerations and node selectors."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import random
import threading
import time
import uuid
from pathlib import Path

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



# ---------------------------------------------------------------------------- 12.2 a Pending pod
POOL_LABEL = "exercise.labkit.dev/pool"


def _setup_pending(t: Target) -> None:
    t.core.create_namespaced_pod(t.namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
        "spec": {"nodeSelector": {POOL_LABEL: t.namespace}, "terminationGracePeriodSeconds": 0,
                 "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}})


def _verify_pending(t: Target) -> Verdict:
    pod = t.pod("web")
    if pod is None:
        return Verdict.not_yet(f"there is no pod 'web' in namespace {t.namespace!r} (the exercise's set-up makes it;"
                               " it must stay as it was made)")
    if (pod.spec.node_selector or {}).get(POOL_LABEL) != t.namespace:
        return Verdict.not_yet(f"web no longer asks for {POOL_LABEL}={t.namespace}: leave the pod as it is and"
                               " change the nodes instead")
    if not pod.spec.node_name:
        cond = next((c for c in pod.status.conditions or [] if c.type == "PodScheduled"), None)
        why = f": {cond.message}" if cond is not None and cond.message else ""
        return Verdict.not_yet(f"web is still Pending, not placed on any node{why}")
    labels = t.core.read_node(pod.spec.node_name).metadata.labels or {}
    if labels.get(POOL_LABEL) != t.namespace:
        return Verdict.not_yet(f"web was placed on {pod.spec.node_name}, which no longer has the label")
    if pod.status.phase != "Running":
        return Verdict.not_yet(f"web is on {pod.spec.node_name} but {pod.status.phase}, not Running yet")
    return Verdict.ok(f"web runs on {pod.spec.node_name}, the node you labelled {POOL_LABEL}={t.namespace}")


def _solve_pending(t: Target) -> None:
    t.core.patch_node(_last_node(t), {"metadata": {"labels": {POOL_LABEL: t.namespace}}})


def _unlabel_nodes(t: Target) -> None:
    for n in t.core.list_node().items:
        if (n.metadata.labels or {}).get(POOL_LABEL) == t.namespace:
            t.core.patch_node(n.metadata.name, {"metadata": {"labels": {POOL_LABEL: None}}})


# ---------------------------------------------------------------------------- 12.3 a score plugin
PLUGIN_FILE = "score_plugin.py"
PROBE_LABEL = "exercise.labkit.dev/probe"


def _load_plugin(t: Target):  # noqa: ANN202 - (a ScorePlugin, None) or (None, what is wrong)
    from labkit.controlplane.scheduler.plugins import ScorePlugin

    path = Path(t.workdir) / PLUGIN_FILE
    if not path.exists():
        return None, f"there is no {path} yet: write your plugin class there"
    spec = importlib.util.spec_from_file_location(f"learner_score_plugin_{uuid.uuid4().hex[:8]}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - the learner's file: report, do not crash
        return None, f"{path} does not load: {type(err).__name__}: {err}"
    classes = [c for _, c in inspect.getmembers(module, inspect.isclass)
               if issubclass(c, ScorePlugin) and c is not ScorePlugin and c.__module__ == module.__name__]
    if not classes:
        return None, f"{path} defines no subclass of labkit.controlplane.scheduler.plugins.ScorePlugin"
    try:
        return classes[0](), None
    except Exception as err:  # noqa: BLE001
        return None, f"{classes[0].__name__}() fails: {type(err).__name__}: {err}"


def _synthetic_check(plugin) -> str | None:  # noqa: ANN001
    """Place pods on made-up nodes with only this plugin scoring: it must pick the fullest node that fits."""
    from labkit.controlplane.scheduler import Framework, simulate

    rng = random.Random()
    for _ in range(3):
        cpus = rng.sample(range(0, 3500, 250), 4)  # requested millicores per node, all different
        nodes = [{"metadata": {"name": f"n{i}"}, "status": {"allocatable": {"cpu": "4", "memory": "8Gi",
                                                                            "pods": "110"}}} for i in range(5)]
        pods = [{"metadata": {"name": f"load{i}", "namespace": "x"},
                 "spec": {"nodeName": f"n{i}", "containers": [{"name": "c", "resources": {
                     "requests": {"cpu": f"{m}m", "memory": "1Gi"}}}]}} for i, m in enumerate(cpus)]
        full = {"metadata": {"name": "full", "namespace": "x"}, "spec": {"nodeName": "n4", "containers": [
            {"name": "c", "resources": {"requests": {"cpu": "3900m", "memory": "1Gi"}}}]}}
        probe = {"metadata": {"name": "probe", "namespace": "x"}, "spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}}}]}}
        try:
            d = simulate(nodes, [*pods, full], probe, Framework(scores=[(plugin, 1)]))
        except Exception as err:  # noqa: BLE001
            return f"{type(plugin).__name__}.score raised {type(err).__name__}: {err}"
        want = f"n{max(range(4), key=lambda i: cpus[i])}"
        if d.node != want:
            loads = ", ".join(f"n{i}: {m}m" for i, m in enumerate(cpus))
            return (f"on made-up nodes of 4 CPUs requested {loads}, n4: 3900m (full), your plugin placed a 500m pod"
                    f" on {d.node}; packing puts it on {want}, the fullest node it fits on")
    return None


def _probe_pod(name: str, scheduler: str, cpu: str, node: str | None = None) -> dict:
    spec = {"terminationGracePeriodSeconds": 0,
            "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"],
                            "resources": {"requests": {"cpu": cpu, "memory": "32Mi"}}}]}
    spec.update({"nodeName": node} if node else {"schedulerName": scheduler})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {PROBE_LABEL: "12.3"}},
            "spec": spec}


def _delete_probes(t: Target, wait: float = 20.0) -> None:
    sel = f"{PROBE_LABEL}=12.3"
    for p in t.core.list_namespaced_pod(t.namespace, label_selector=sel).items:
        if not p.metadata.deletion_timestamp:
            t.core.delete_namespaced_pod(p.metadata.name, t.namespace, grace_period_seconds=0)
    deadline = time.monotonic() + wait
    while t.core.list_namespaced_pod(t.namespace, label_selector=sel).items and time.monotonic() < deadline:
        time.sleep(0.2)


def _run_scheduler(t: Target, name: str, plugin, keys: set[str], timeout: float = 15.0) -> None:  # noqa: ANN001
    """Run labkit's scheduler with only this score plugin until it has placed ``keys`` (on its own thread:
    a notebook's kernel already runs an event loop)."""
    from labkit.client import Client
    from labkit.controlplane.scheduler import Framework
    from labkit.controlplane.scheduler.scheduler import Scheduler

    async def main() -> None:
        client = Client(t.kubeconfig, user_agent=f"exercise-12.3/{name}")
        s = Scheduler(client, name, framework=Framework(scores=[(plugin, 1)]), events=True)
        task = asyncio.create_task(s.run())
        try:
            deadline = time.monotonic() + timeout
            while not keys <= set(s.decisions) and time.monotonic() < deadline and not task.done():
                await asyncio.sleep(0.1)
            while s.binding and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await client.close()

    th = threading.Thread(target=lambda: asyncio.run(main()), name=f"exercise-12.3-{name}")
    th.start()
    th.join(timeout + 10)


def _verify_plugin(t: Target) -> Verdict:
    plugin, problem = _load_plugin(t)
    if plugin is None:
        return Verdict.not_yet(problem)
    problem = _synthetic_check(plugin)
    if problem:
        return Verdict.not_yet(problem)
    # the real thing: a scheduler with the plugin places three pods on this cluster
    _delete_probes(t)
    name = f"packer-{t.namespace}"
    busy = random.choice(sorted(n.metadata.name for n in t.core.list_node().items))
    t.core.create_namespaced_pod(t.namespace, _probe_pod("ballast", name, "1", node=busy))
    probes = [f"pack-{i}" for i in range(3)]
    try:
        for p in probes:
            t.core.create_namespaced_pod(t.namespace, _probe_pod(p, name, "100m"))
        time.sleep(0.3)  # the ballast reaches the scheduler's informer with the rest
        _run_scheduler(t, name, plugin, {f"{t.namespace}/{p}" for p in probes})
        placed = {p: pod.spec.node_name if (pod := t.pod(p)) is not None else None for p in probes}
    finally:
        _delete_probes(t, wait=0)
    if any(n is None for n in placed.values()):
        return Verdict.not_yet(f"scheduler {name} with your plugin left pods unplaced: {placed}")
    if set(placed.values()) != {busy}:
        return Verdict.not_yet(f"with {busy} the busiest node (a 1-CPU ballast pod), scheduler {name} put the pods"
                               f" on {', '.join(f'{k}->{v}' for k, v in placed.items())}; packing puts them all"
                               f" on {busy}")
    return Verdict.ok(f"your plugin packed: all three pods joined the ballast on {busy}, where the default"
                      " scores would have spread them to the emptier node")


PLUGIN_SOLUTION = '''import numpy as np

from labkit.controlplane.scheduler.plugins import ScorePlugin


class MostAllocated(ScorePlugin):
    """Prefer the fullest node: mean over cpu and memory of the requested share, x 100."""

    name = "MostAllocated"

    def score(self, t, p, idx):
        frac = []
        for i, r in enumerate(("cpu", "memory")):
            row = t.rows[r]
            alloc = t.alloc[row, idx].astype(float)
            want = t.req[row, idx] + p.nonzero[i]
            frac.append(np.where(alloc > 0, np.minimum(want / np.maximum(alloc, 1), 1.0), 1.0))
        return (frac[0] + frac[1]) * 50.0
'''


def _solve_plugin(t: Target) -> None:
    Path(t.workdir).mkdir(parents=True, exist_ok=True)
    (Path(t.workdir) / PLUGIN_FILE).write_text(PLUGIN_SOLUTION)


def _cleanup_plugin(t: Target) -> None:
    _delete_probes(t, wait=0)

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
    Exercise(
        id="12.2",
        title="Why is this pod Pending?",
        statement="""The pod `web` stays Pending. Find out why (its `PodScheduled` condition, its
`FailedScheduling` Event, `kubectl describe pod web`) and make it run **without changing or
re-creating the pod**: change the cluster so that the scheduler finds a node for it. The scheduler
tries unschedulable pods again whenever a node changes.""",
        setup=_setup_pending,
        verify=_verify_pending,
        solution=_solve_pending,
        solution_text=f"""The pod has a nodeSelector `{POOL_LABEL}: <your namespace>` that no node matches;
label one node with it:

```console
$ kubectl describe pod web        # FailedScheduling: 0/2 nodes are available: 2 node(s) didn't match ...
$ kubectl label node node-2 {POOL_LABEL}=<your namespace>
```""",
        cleanup=_unlabel_nodes,
        concept="filters, FailedScheduling and retries",
        difficulty="easy",
        cluster={"nodes": 2},
    ),
    Exercise(
        id="12.3",
        title="Write a score plugin that packs pods",
        statement=f"""labkit's default scores *spread* pods: NodeResourcesLeastAllocated prefers the emptiest
node. Write the opposite, kube-scheduler's **MostAllocated** idea: a class derived from
`labkit.controlplane.scheduler.plugins.ScorePlugin` whose `score(self, t, p, idx)` returns, for
each node slot in `idx`, 0..100 points, more for a **fuller** node (the share of its CPU and memory
that would be requested with the pod on it). `t` is the `NodeTable` (`t.alloc`, `t.req`: rows
`t.rows["cpu"]`, `t.rows["memory"]`), `p.nonzero` the pod's (cpu, memory) request.
Save it as `{PLUGIN_FILE}` in your exercise folder (`check` names it). The check loads it into
a second scheduler (`schedulerName: packer-<namespace>`) that scores with your plugin alone, puts a
1-CPU pod on a random node, and schedules three small pods: they must all land on that node.""",
        verify=_verify_plugin,
        solution=_solve_plugin,
        solution_text="```python\n" + PLUGIN_SOLUTION + "```",
        cleanup=_cleanup_plugin,
        concept="scheduler plugins: scoring",
        difficulty="hard",
        cluster={"nodes": 2},
        timeout=60.0,
    ),
]
