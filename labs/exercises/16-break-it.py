"""Lab 16's exercises: make workloads that ride out the faults the lab injects."""

from __future__ import annotations

import os
import signal
import time

from labkit.practice import Exercise, Target, Verdict

NODE_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def _tolerated(pod, key: str) -> int | None:  # noqa: ANN001
    for tol in pod.spec.tolerations or []:
        if tol.key == key and tol.effect == "NoExecute" and tol.operator in (None, "Exists"):
            return tol.toleration_seconds
    return None


def _verify_tolerations(t: Target) -> Verdict:
    try:
        d = t.apps.read_namespaced_deployment("steady", t.namespace)
    except Exception:
        return Verdict.not_yet(f"there is no Deployment 'steady' in namespace {t.namespace!r} yet")
    sel = ",".join(f"{k}={v}" for k, v in (d.spec.selector.match_labels or {}).items())
    pods = [p for p in t.core.list_namespaced_pod(t.namespace, label_selector=sel).items
            if not p.metadata.deletion_timestamp]
    running = [p for p in pods if p.status.phase == "Running"]
    if len(running) < 2:
        return Verdict.not_yet(f"steady has {len(running)} running pod(s); it should have 2")
    for key in NODE_TAINTS:
        secs = [_tolerated(p, key) for p in running]
        if any(s is None for s in secs):
            return Verdict.not_yet(f"a pod of steady does not tolerate {key}:NoExecute (operator Exists)")
        if any(s < 300 for s in secs):
            return Verdict.not_yet(f"steady tolerates {key} for {min(secs)} s; give it 300 s, as Kubernetes does")
    return Verdict.ok("both pods would stay 300 s on a node that stops reporting before being evicted")


def _solve_tolerations(t: Target) -> None:
    tolerations = [{"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
                   for k in NODE_TAINTS]
    t.apps.create_namespaced_deployment(t.namespace, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "steady"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "steady"}},
                 "template": {"metadata": {"labels": {"app": "steady"}}, "spec": {
                     "tolerations": tolerations, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "app", "image": "busybox", "command": ["sleep", "3600"]}]}}}})


def _verify_restarted(t: Target) -> Verdict:
    try:
        pod = t.core.read_namespaced_pod("resilient", t.namespace)
    except Exception:
        return Verdict.not_yet(f"there is no pod 'resilient' in namespace {t.namespace!r} yet")
    st = (pod.status.container_statuses or [None])[0]
    if st is None or not st.ready or pod.status.phase != "Running":
        return Verdict.not_yet("resilient is not running and ready yet")
    if st.restart_count < 1:
        return Verdict.not_yet("resilient's container has never restarted: kill its process (labkit chaos "
                               "container-kill, or kill -9 its host pid) and watch the kubelet start it again")
    last = st.last_state.terminated if st.last_state else None
    if last is None or last.exit_code not in (137, -9):
        return Verdict.not_yet(f"the last exit of resilient was {last.exit_code if last else 'unknown'}; "
                               "kill it with SIGKILL (exit 137)")
    return Verdict.ok(f"resilient restarted {st.restart_count} time(s) after a SIGKILL and runs again")


def _solve_restarted(t: Target) -> None:
    import labkit.runtime as runtimes

    t.core.create_namespaced_pod(t.namespace, {"metadata": {"name": "resilient"}, "spec": {
        "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "app", "image": "busybox", "command": ["sleep", "3600"]}]}})
    for _ in range(300):
        pod = t.core.read_namespaced_pod("resilient", t.namespace)
        st = (pod.status.container_statuses or [None])[0]
        if st is not None and st.ready and st.container_id:
            break
        time.sleep(0.1)
    backend, _, cid = st.container_id.partition("://")
    os.kill(runtimes.get(backend).container_status(cid).pid, signal.SIGKILL)


EXERCISES = [
    Exercise(
        id="16.1", title="Pods that wait out a quiet node",
        statement="""labkit's apiserver does not give pods the two default tolerations kube-apiserver adds, so a
node that stops reporting loses its pods at once. Make a Deployment named `steady` with 2 replicas
(image `busybox`, command `sleep 3600`) whose pods tolerate `node.kubernetes.io/not-ready` and
`node.kubernetes.io/unreachable` (effect `NoExecute`) for 300 seconds, as Kubernetes' defaults do.""",
        verify=_verify_tolerations, solution=_solve_tolerations,
        solution_text="""```yaml
tolerations:
- {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 300}
- {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 300}
```
in the pod template of a 2-replica Deployment `steady`.""",
        concept="taint-based eviction", difficulty="easy", cluster={"nodes": 2}),
    Exercise(
        id="16.2", title="Kill a container and watch it come back",
        statement="""Run a pod named `resilient` (image `busybox`, command `sleep 3600`). Then kill its
container's process with SIGKILL, from outside the pod (`labkit chaos container-kill`, or
`kill -9` of its host pid). The check wants the pod running again with a restart count of at
least 1 and a last exit code of 137.""",
        verify=_verify_restarted, solution=_solve_restarted,
        solution_text="""`kubectl run resilient --image=busybox -- sleep 3600`, then
`labkit chaos container-kill --target NAMESPACE/resilient --cluster NAME` (or find the pid through the
runtime and `kill -9` it). The kubelet sees the exit and starts the container again.""",
        concept="the kubelet restarts containers", difficulty="medium", cluster={"nodes": 2}, needs=("root",)),
]
