"""Lab 13's exercises: drive the controllers (ReplicaSet, Deployment, Job) and watch them converge."""

from __future__ import annotations

import time
from collections.abc import Callable

from labkit.practice import Exercise, Target, Verdict

BROKEN_IMAGE = "bussybox:1.36"  # a typo: no such image (any busybox:TAG would be built)


def _wait(cond: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.2)
    return False


def _deployment(name: str, replicas: int, image: str = "busybox") -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"terminationGracePeriodSeconds": 0,
                                           "containers": [{"name": "app", "image": image,
                                                           "command": ["sleep", "3600"]}]}}}}


def _owned(items: list, owner_uid: str) -> list:
    return [x for x in items if any(r.uid == owner_uid and r.controller for r in x.metadata.owner_references or [])]


def _running_pods_of(t: Target, rs_uid: str) -> list:
    pods = _owned(t.core.list_namespaced_pod(t.namespace).items, rs_uid)
    return [p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp]


# ---------------------------------------------------------------------------- 13.1 scale
def _setup_scale(t: Target) -> None:
    t.apps.create_namespaced_deployment(t.namespace, _deployment("web", 1))


def _verify_scale(t: Target) -> Verdict:
    d = t.deployment("web")
    if d is None:
        return Verdict.not_yet(f"there is no Deployment 'web' in namespace {t.namespace!r}")
    if d.spec.replicas != 4:
        return Verdict.not_yet(f"web asks for {d.spec.replicas} replica(s); scale it to 4")
    sets = [r for r in _owned(t.apps.list_namespaced_replica_set(t.namespace).items, d.metadata.uid)
            if (r.spec.replicas or 0) > 0]
    if len(sets) != 1:
        return Verdict.not_yet(f"web has {len(sets)} ReplicaSets with replicas; wait for its rollout to settle")
    rs = sets[0]
    if rs.spec.replicas != 4:
        return Verdict.not_yet(f"the deployment controller has not passed 4 on to ReplicaSet {rs.metadata.name}"
                               f" yet (it asks for {rs.spec.replicas})")
    running = _running_pods_of(t, rs.metadata.uid)
    if len(running) != 4:
        return Verdict.not_yet(f"ReplicaSet {rs.metadata.name} wants 4 pods and {len(running)} run so far")
    return Verdict.ok(f"ReplicaSet {rs.metadata.name} runs 4 pods on {sorted({p.spec.node_name for p in running})}")


def _solve_scale(t: Target) -> None:
    t.apps.patch_namespaced_deployment_scale("web", t.namespace, {"spec": {"replicas": 4}})


# ---------------------------------------------------------------------------- 13.2 roll back
def _setup_broken_rollout(t: Target) -> None:
    t.apps.create_namespaced_deployment(t.namespace, _deployment("shop", 2))

    def available() -> bool:
        d = t.apps.read_namespaced_deployment("shop", t.namespace)
        return (d.status.available_replicas or 0) == 2

    _wait(available, 30)
    t.apps.patch_namespaced_deployment("shop", t.namespace, {"spec": {"template": {"spec": {
        "containers": [{"name": "app", "image": BROKEN_IMAGE}]}}}})

    def broken_revision() -> bool:  # the broken ReplicaSet exists: there is a revision to roll back from
        d = t.apps.read_namespaced_deployment("shop", t.namespace)
        return (d.metadata.annotations or {}).get("deployment.kubernetes.io/revision") == "2"

    _wait(broken_revision, 30)


def _verify_rollback(t: Target) -> Verdict:
    d = t.deployment("shop")
    if d is None:
        return Verdict.not_yet(f"there is no Deployment 'shop' in namespace {t.namespace!r}")
    image = d.spec.template.spec.containers[0].image
    if image == BROKEN_IMAGE:
        pods = t.core.list_namespaced_pod(t.namespace, label_selector="app=shop").items
        stuck = [p.metadata.name for p in pods for s in p.status.container_statuses or []
                 if s.state and s.state.waiting and s.state.waiting.reason in ("ErrImagePull", "ImagePullBackOff")]
        return Verdict.not_yet(f"shop's template still asks for {BROKEN_IMAGE}"
                               + (f"; pods {', '.join(stuck)} cannot pull it" if stuck else "")
                               + ": roll the Deployment back to its previous revision")
    revision = int((d.metadata.annotations or {}).get("deployment.kubernetes.io/revision", "0"))
    if revision < 3:
        return Verdict.not_yet(f"shop is at revision {revision}: it was re-created, not rolled back;"
                               " a rollback makes the old ReplicaSet the newest revision (3)")
    want = d.spec.replicas or 0
    st = d.status
    if (st.updated_replicas or 0) != want or (st.available_replicas or 0) != want or (st.replicas or 0) != want:
        return Verdict.not_yet(f"the rollback is under way: {st.updated_replicas or 0} updated,"
                               f" {st.available_replicas or 0} available, {st.replicas or 0} in all, of {want}")
    sets = _owned(t.apps.list_namespaced_replica_set(t.namespace).items, d.metadata.uid)
    broken = [r for r in sets if r.spec.template.spec.containers[0].image == BROKEN_IMAGE]
    if any((r.status.replicas or 0) > 0 for r in broken):
        return Verdict.not_yet("the broken ReplicaSet still has pods; wait for the rollout to finish")
    return Verdict.ok(f"shop is back on {image} at revision {revision}, {want}/{want} available;"
                      f" the broken ReplicaSet is kept at 0 replicas for the history")


def _solve_rollback(t: Target) -> None:
    d = t.apps.read_namespaced_deployment("shop", t.namespace)
    sets = _owned(t.apps.list_namespaced_replica_set(t.namespace).items, d.metadata.uid)
    previous = next(r for r in sets if r.metadata.annotations.get("deployment.kubernetes.io/revision") == "1")
    template = t.apps.api_client.sanitize_for_serialization(previous.spec.template)
    template["metadata"]["labels"].pop("pod-template-hash", None)
    t.apps.patch_namespaced_deployment("shop", t.namespace, {"spec": {"template": template}})


# ---------------------------------------------------------------------------- 13.3 a Job, five times
def _verify_job(t: Target) -> Verdict:
    from kubernetes.client.exceptions import ApiException

    try:
        job = t.batch.read_namespaced_job("count", t.namespace)
    except ApiException as err:
        if err.status == 404:
            return Verdict.not_yet(f"there is no Job 'count' in namespace {t.namespace!r}")
        raise
    if job.spec.completions != 5 or (job.spec.parallelism or 1) != 2:
        return Verdict.not_yet(f"count has completions={job.spec.completions}, parallelism={job.spec.parallelism};"
                               " it needs 5 and 2")
    pods = _owned(t.core.list_namespaced_pod(t.namespace).items, job.metadata.uid)
    done = [p for p in pods if p.status.phase == "Succeeded"]
    complete = any(c.type == "Complete" and c.status == "True" for c in job.status.conditions or [])
    if not complete:
        return Verdict.not_yet(f"count is still running: {len(done)} of 5 pods succeeded,"
                               f" {job.status.active or 0} active")
    if len(done) < 5:
        return Verdict.not_yet(f"count says Complete but only {len(done)} succeeded pods of it remain")
    return Verdict.ok(f"count completed: {len(done)} pods succeeded, at most 2 at a time")


JOB_SOLUTION = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "count"},
                "spec": {"completions": 5, "parallelism": 2, "backoffLimit": 2,
                         "template": {"spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                                               "containers": [{"name": "work", "image": "busybox",
                                                               "command": ["sh", "-c", "echo one done"]}]}}}}


def _solve_job(t: Target) -> None:
    t.batch.create_namespaced_job(t.namespace, JOB_SOLUTION)


EXERCISES = [
    Exercise(
        id="13.1",
        title="Scale a Deployment and watch its ReplicaSet",
        statement="""The Deployment `web` runs one pod. Scale it to **4** replicas, then watch which object
changes first: the Deployment's `spec.replicas`, its ReplicaSet's `spec.replicas`, or the pods
(`kubectl get deploy,rs,pods -w`). The check passes when the ReplicaSet runs four pods.""",
        setup=_setup_scale,
        verify=_verify_scale,
        solution=_solve_scale,
        solution_text="""```console
$ kubectl scale deployment web --replicas=4
$ kubectl get rs -w      # DESIRED goes to 4 first, then CURRENT and READY follow
```""",
        concept="Deployment -> ReplicaSet -> pods",
        difficulty="easy",
        cluster={"nodes": 2},
    ),
    Exercise(
        id="13.2",
        title="Roll back a broken rollout",
        statement=f"""Someone updated the Deployment `shop` to the image `{BROKEN_IMAGE}`, which does not exist.
Find out why its new pods never start (their state and Events), then **roll the Deployment back**
to the revision that worked, without deleting it. Look at the ReplicaSets afterwards: which one
runs the pods now, and what became of the broken one?""",
        setup=_setup_broken_rollout,
        verify=_verify_rollback,
        solution=_solve_rollback,
        solution_text="""```console
$ kubectl get pods -l app=shop            # the new pod: ErrImagePull
$ kubectl rollout history deployment/shop
$ kubectl rollout undo deployment/shop    # revision 1's template comes back as revision 3
$ kubectl get rs -l app=shop              # the old ReplicaSet runs 2 pods again, the broken one 0
```""",
        concept="rolling updates and revisions",
        difficulty="medium",
        cluster={"nodes": 2},
        timeout=90.0,
    ),
    Exercise(
        id="13.3",
        title="A Job that completes five times",
        statement="""Create a Job named `count` that must **succeed 5 times**, running **at most 2 pods at a
time** (image `busybox`, any short command that exits 0). Watch `kubectl get pods -w` while it
runs: how many pods does the Job controller keep going at once, and when does it stop?""",
        verify=_verify_job,
        solution=_solve_job,
        solution_text="""```yaml
apiVersion: batch/v1
kind: Job
metadata: {name: count}
spec:
  completions: 5
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: work, image: busybox, command: [sh, -c, echo one done]}]
```""",
        concept="Jobs: completions and parallelism",
        difficulty="medium",
        cluster={"nodes": 2},
        timeout=90.0,
    ),
]
