"""Lab 44's exercises: Borg's lessons as a learner applies them: groups by label, and a pod as an alloc."""

from __future__ import annotations

import secrets
import time

from labkit.practice import Exercise, Target, Verdict

NETWORK = ("root", "ip", "bridge")


def _pod(name: str, labels: dict[str, str]) -> dict:
    return {"metadata": {"name": name, "labels": labels}, "spec": {"terminationGracePeriodSeconds": 0,
            "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}}


def _running(t: Target, selector: str) -> list:
    return [p for p in t.core.list_namespaced_pod(t.namespace, label_selector=selector).items
            if p.status.phase == "Running" and p.status.pod_ip and not p.metadata.deletion_timestamp]


def _verify_front(t: Target) -> Verdict:
    from kubernetes.client.exceptions import ApiException

    try:
        svc = t.core.read_namespaced_service("front", t.namespace)
    except ApiException as exc:
        if exc.status == 404:
            return Verdict.not_yet(f"there is no Service 'front' in namespace {t.namespace!r} yet")
        raise
    stable = {p.status.pod_ip for p in _running(t, "tier=frontend,track=stable")}
    canary = {p.status.pod_ip for p in _running(t, "tier=frontend,track=canary")}
    if len(stable) < 2 or not canary:
        return Verdict.not_yet(f"run at least two pods labelled tier=frontend,track=stable and one labelled "
                               f"tier=frontend,track=canary (running now: {len(stable)} stable, {len(canary)} canary)")
    try:
        subsets = t.core.read_namespaced_endpoints("front", t.namespace).subsets or []
    except ApiException as exc:
        if exc.status != 404:
            raise
        subsets = []
    serving = {a.ip for s in subsets for a in s.addresses or []}
    if serving & canary:
        return Verdict.not_yet(f"front's selector {svc.spec.selector} also picks the canary pod: add track=stable")
    if serving != stable:
        return Verdict.not_yet(f"front's endpoints are {sorted(serving) or 'empty'}, not the stable front-end pods "
                               f"{sorted(stable)}: check its selector {svc.spec.selector}")
    return Verdict.ok(f"front serves the {len(stable)} stable front-end pods and not the canary")


def _solve_front(t: Target) -> None:
    from labkit.practice.proof import wait_until

    for name, track in (("web-1", "stable"), ("web-2", "stable"), ("web-canary", "canary")):
        t.core.create_namespaced_pod(t.namespace, _pod(name, {"tier": "frontend", "track": track}))
    t.core.create_namespaced_service(t.namespace, {"metadata": {"name": "front"}, "spec": {
        "selector": {"tier": "frontend", "track": "stable"}, "ports": [{"port": 80}]}})
    wait_until("three front-end pods running", lambda: len(_running(t, "tier=frontend")) == 3)


def _exec(t: Target, pod: str, container: str, command: str) -> str:
    from kubernetes.stream import stream

    return stream(t.core.connect_get_namespaced_pod_exec, pod, t.namespace, container=container,
                  command=["sh", "-c", command], stderr=True, stdin=False, stdout=True, tty=False)


def _verify_pair(t: Target) -> Verdict:
    p = t.pod("pair")
    if p is None:
        return Verdict.not_yet(f"there is no pod 'pair' in namespace {t.namespace!r} yet")
    names = [c.name for c in p.spec.containers]
    if "web" not in names or len(names) < 2:
        return Verdict.not_yet(f"pair has containers {names}: it needs 'web' and a second container beside it")
    if p.status.phase != "Running":
        return Verdict.not_yet(f"pair is {p.status.phase}; wait until it is Running")
    empty = {v.name for v in p.spec.volumes or [] if v.empty_dir is not None}
    web = next(c for c in p.spec.containers if c.name == "web")
    side = next(c for c in p.spec.containers if c.name != "web")
    web_mounts = {m.name: m.mount_path for m in web.volume_mounts or [] if m.name in empty}
    side_mounts = {m.name: m.mount_path for m in side.volume_mounts or [] if m.name in web_mounts}
    if not side_mounts:
        return Verdict.not_yet("web and the second container must both mount one emptyDir volume")
    vol, path = next(iter(side_mounts.items()))
    token = secrets.token_hex(8)
    # the check writes a file into the volume from the sidecar, and asks web for it over localhost
    got = ""
    for _ in range(20):
        got = _exec(t, "pair", side.name,
                    f"echo {token} > {path}/check-{token}.txt && wget -q -O- http://127.0.0.1:8080/check-{token}.txt")
        if token in got:
            return Verdict.ok(f"{side.name} wrote into volume {vol!r} and web served it on localhost:8080")
        time.sleep(0.25)
    return Verdict.not_yet(f"{side.name} wrote {path}/check-{token}.txt, but http://127.0.0.1:8080/ from its side did "
                           f"not serve it ({got.strip()[:120] or 'no answer'}): web must serve {web_mounts[vol]} "
                           f"on port 8080, e.g. httpd -f -p 8080 -h {web_mounts[vol]}")


def _solve_pair(t: Target) -> None:
    from labkit.practice.proof import wait_until

    mount = {"name": "shared", "mountPath": "/shared"}
    t.core.create_namespaced_pod(t.namespace, {"metadata": {"name": "pair"}, "spec": {
        "terminationGracePeriodSeconds": 0, "volumes": [{"name": "shared", "emptyDir": {}}],
        "containers": [
            {"name": "web", "image": "busybox", "command": ["httpd", "-f", "-p", "8080", "-h", "/shared"],
             "volumeMounts": [mount]},
            {"name": "feeder", "image": "busybox", "volumeMounts": [mount],
             "command": ["sh", "-c", "while true; do date > /shared/index.html; sleep 5; done"]}]}})
    wait_until("pair running", lambda: (p := t.pod("pair")) is not None and p.status.phase == "Running")


EXERCISES = [
    Exercise(
        id="44.1", title="A group that is a selector, not a job",
        statement="""Run three pods in your namespace: two labelled `tier=frontend,track=stable` and one
labelled `tier=frontend,track=canary`. Then create a Service named `front` whose endpoints are the two
stable pods and not the canary. Borg could only group tasks by job; here the group is a selector, and
the endpoints controller computes who is in it.""",
        setup=None, verify=_verify_front, solution=_solve_front,
        solution_text="""```bash
kubectl run web-1 --image=busybox --labels=tier=frontend,track=stable -- sleep 3600
kubectl run web-2 --image=busybox --labels=tier=frontend,track=stable -- sleep 3600
kubectl run web-canary --image=busybox --labels=tier=frontend,track=canary -- sleep 3600
```
```yaml
apiVersion: v1
kind: Service
metadata: {name: front}
spec:
  selector: {tier: frontend, track: stable}
  ports: [{port: 80}]
```""",
        concept="labels and selectors instead of jobs", difficulty="easy", cluster={"nodes": 2}, needs=NETWORK),
    Exercise(
        id="44.2", title="An alloc: a server and its sidecar in one pod",
        statement="""Run a pod named `pair` with two containers: `web`, which serves a shared `emptyDir` volume
over HTTP on port 8080 (busybox: `httpd -f -p 8080 -h DIR`), and a second container of your choice that
mounts the same volume. The check writes a file into the volume from the second container and fetches
it from `http://127.0.0.1:8080/`: it works only if the two containers share the volume and the
network namespace, as the tasks of a Borg alloc shared its resources.""",
        setup=None, verify=_verify_pair, solution=_solve_pair,
        solution_text="""```yaml
apiVersion: v1
kind: Pod
metadata: {name: pair}
spec:
  volumes: [{name: shared, emptyDir: {}}]
  containers:
  - name: web
    image: busybox
    command: [httpd, -f, -p, "8080", -h, /shared]
    volumeMounts: [{name: shared, mountPath: /shared}]
  - name: feeder
    image: busybox
    command: [sh, -c, "while true; do date > /shared/index.html; sleep 5; done"]
    volumeMounts: [{name: shared, mountPath: /shared}]
```""",
        concept="the pod as Borg's alloc: shared network and volumes", difficulty="medium", cluster={"nodes": 2},
        needs=NETWORK),
]
