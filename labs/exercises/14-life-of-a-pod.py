"""Lab 14's exercises: the steps of a pod's life that the kubelet takes, seen in its status and Events."""

from __future__ import annotations

import time

from labkit.practice import Exercise, Target, Verdict

TYPO_IMAGE = "busyboxx"
GREETING = "written by the init container"


def _waiting(pod) -> str:  # noqa: ANN001
    for s in pod.status.container_statuses or []:
        if s.state and s.state.waiting and s.state.waiting.reason:
            return f"{s.name} is waiting ({s.state.waiting.reason})"
    return f"phase {pod.status.phase}"


# ---------------------------------------------------------------------------- 14.1 failed pull
def _setup_typo(t: Target) -> None:
    t.core.create_namespaced_pod(t.namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"terminationGracePeriodSeconds": 0,
                 "containers": [{"name": "app", "image": TYPO_IMAGE, "command": ["sleep", "3600"]}]}})


def _verify_typo(t: Target) -> Verdict:
    pod = t.pod("web")
    if pod is None:
        return Verdict.not_yet(f"there is no pod 'web' in namespace {t.namespace!r}: create it again with an image"
                               " that exists")
    image = pod.spec.containers[0].image
    if pod.status.phase != "Running" or pod.metadata.deletion_timestamp:
        failed = [e.message for e in t.core.list_namespaced_event(
            t.namespace, field_selector=f"involvedObject.name=web,involvedObject.uid={pod.metadata.uid}").items
            if e.reason == "Failed"]
        return Verdict.not_yet(f"web ({image}) is not Running: {_waiting(pod)}"
                               + (f"; the kubelet's Event says: {failed[-1]}" if failed else ""))
    return Verdict.ok(f"web runs {image} on {pod.spec.node_name}")


def _solve_typo(t: Target) -> None:
    t.core.delete_namespaced_pod("web", t.namespace, grace_period_seconds=0)
    for _ in range(150):
        if t.pod("web") is None:
            break
        time.sleep(0.2)
    t.core.create_namespaced_pod(t.namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"terminationGracePeriodSeconds": 0,
                 "containers": [{"name": "app", "image": "busybox", "command": ["sleep", "3600"]}]}})


# ---------------------------------------------------------------------------- 14.2 init container
def _verify_init(t: Target) -> Verdict:
    pod = t.pod("greeter")
    if pod is None:
        return Verdict.not_yet(f"there is no pod 'greeter' in namespace {t.namespace!r}")
    if not pod.spec.init_containers:
        return Verdict.not_yet("greeter has no initContainers")
    if not any(v.empty_dir is not None for v in pod.spec.volumes or []):
        return Verdict.not_yet("greeter has no emptyDir volume for the two containers to share")
    inits = pod.status.init_container_statuses or []
    if not inits or not all(s.state and s.state.terminated and s.state.terminated.exit_code == 0 for s in inits):
        return Verdict.not_yet(f"greeter's init container has not finished with exit code 0 yet ({pod.status.phase})")
    if pod.status.phase != "Running":
        return Verdict.not_yet(f"greeter's init container is done; the pod is {_waiting(pod)}")
    log = t.core.read_namespaced_pod_log("greeter", t.namespace, container=pod.spec.containers[0].name)
    if GREETING not in log:
        return Verdict.not_yet(f"greeter runs, but its main container's log does not show {GREETING!r}"
                               f" (it shows {log.strip()[-80:]!r})")
    return Verdict.ok(f"the init container wrote, exited, and then the main container printed {GREETING!r}")


def _solve_init(t: Target) -> None:
    t.core.create_namespaced_pod(t.namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "greeter"},
        "spec": {"terminationGracePeriodSeconds": 0,
                 "volumes": [{"name": "shared", "emptyDir": {}}],
                 "initContainers": [{"name": "write", "image": "busybox", "command": [
                     "sh", "-c", f"echo '{GREETING}' > /shared/greeting"],
                     "volumeMounts": [{"name": "shared", "mountPath": "/shared"}]}],
                 "containers": [{"name": "main", "image": "busybox", "command": [
                     "sh", "-c", "cat /shared/greeting; sleep 3600"],
                     "volumeMounts": [{"name": "shared", "mountPath": "/shared"}]}]}})


# ---------------------------------------------------------------------------- 14.3 restart, data kept
def _verify_flaky(t: Target) -> Verdict:
    pod = t.pod("flaky")
    if pod is None:
        return Verdict.not_yet(f"there is no pod 'flaky' in namespace {t.namespace!r}")
    if pod.spec.restart_policy != "OnFailure":
        return Verdict.not_yet(f"flaky has restartPolicy {pod.spec.restart_policy}; it needs OnFailure")
    if pod.status.phase == "Failed":
        return Verdict.not_yet("flaky Failed: the second run must find what the first one left and exit 0")
    restarts = sum(s.restart_count or 0 for s in pod.status.container_statuses or [])
    if pod.status.phase != "Succeeded":
        return Verdict.not_yet(f"flaky is {_waiting(pod)}, {restarts} restart(s) so far")
    if restarts < 1:
        return Verdict.not_yet("flaky succeeded on its first run; it must fail once and succeed when restarted")
    return Verdict.ok(f"flaky failed, was restarted by the kubelet {restarts} time(s) in the same pod,"
                      " and its second run found the first run's file on the emptyDir")


def _solve_flaky(t: Target) -> None:
    t.core.create_namespaced_pod(t.namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "flaky"},
        "spec": {"restartPolicy": "OnFailure", "terminationGracePeriodSeconds": 0,
                 "volumes": [{"name": "scratch", "emptyDir": {}}],
                 "containers": [{"name": "app", "image": "busybox", "command": [
                     "sh", "-c", "if [ -f /scratch/ran ]; then echo second run; exit 0; fi;"
                                 " touch /scratch/ran; echo first run; exit 1"],
                     "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}]}})


EXERCISES = [
    Exercise(
        id="14.1",
        title="A pod that cannot pull its image",
        statement="""The pod `web` never starts. Find out why from the kubelet's **Events**
(`kubectl describe pod web`, or `list_namespaced_event` with a field selector on
`involvedObject.name`), and make a pod `web` run: delete it and create it again with an image
that exists.""",
        setup=_setup_typo,
        verify=_verify_typo,
        solution=_solve_typo,
        solution_text=f"""```console
$ kubectl describe pod web     # Events: Failed to pull image "{TYPO_IMAGE}": no image {TYPO_IMAGE}:latest ...
$ kubectl delete pod web
$ kubectl run web --image=busybox -- sleep 3600
```""",
        concept="image pulls and kubelet Events",
        difficulty="easy",
        cluster={"nodes": 2},
    ),
    Exercise(
        id="14.2",
        title="An init container prepares the pod",
        statement=f"""Create a pod `greeter` with an **init container** that writes the text
`{GREETING}` into a file on an `emptyDir` volume, and a main container that prints that file
(`cat`) and then sleeps. In which order do the kubelet's `Created`/`Started` Events come, and what
does `kubectl get pod greeter -w` show while the init container runs?""",
        verify=_verify_init,
        solution=_solve_init,
        solution_text=f"""```yaml
apiVersion: v1
kind: Pod
metadata: {{name: greeter}}
spec:
  volumes: [{{name: shared, emptyDir: {{}}}}]
  initContainers:
  - name: write
    image: busybox
    command: [sh, -c, "echo '{GREETING}' > /shared/greeting"]
    volumeMounts: [{{name: shared, mountPath: /shared}}]
  containers:
  - name: main
    image: busybox
    command: [sh, -c, "cat /shared/greeting; sleep 3600"]
    volumeMounts: [{{name: shared, mountPath: /shared}}]
```""",
        concept="init containers and emptyDir",
        difficulty="medium",
        cluster={"nodes": 2},
    ),
    Exercise(
        id="14.3",
        title="Fail once, succeed on the restart",
        statement="""Create a pod `flaky` (`restartPolicy: OnFailure`) whose container **fails the first time
and succeeds the second time**, and ends `Succeeded`. The container cannot remember anything
itself: its second run is a new process. Find something in the pod that outlives one run of its
container.""",
        verify=_verify_flaky,
        solution=_solve_flaky,
        solution_text="""An `emptyDir` volume belongs to the pod, not to the container, so it survives a restart:

```yaml
spec:
  restartPolicy: OnFailure
  volumes: [{name: scratch, emptyDir: {}}]
  containers:
  - name: app
    image: busybox
    command: [sh, -c, "if [ -f /scratch/ran ]; then exit 0; fi; touch /scratch/ran; exit 1"]
    volumeMounts: [{name: scratch, mountPath: /scratch}]
```""",
        concept="restart policy and what outlives a container",
        difficulty="hard",
        cluster={"nodes": 2},
    ),
]
