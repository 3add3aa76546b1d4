"""Lab 40's exercises: Borg's bands as PriorityClasses, and quota per band at admission."""

from __future__ import annotations

from labkit.practice import Exercise, Target, Verdict

BANDS = {"production": 1000, "batch": 100}


def _classes(t: Target) -> None:
    from kubernetes import client

    api = client.SchedulingV1Api(t.api_client)
    for name, value in BANDS.items():
        try:
            api.create_priority_class({"metadata": {"name": name}, "value": value})
        except client.ApiException as exc:
            if exc.status != 409:
                raise


def _pod(name: str, band: str) -> dict:
    return {"metadata": {"name": name}, "spec": {
        "priorityClassName": band, "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "app", "image": "busybox", "command": ["sleep", "3600"]}]}}


def _verify_quota(t: Target) -> Verdict:
    quotas = t.core.list_namespaced_resource_quota(t.namespace).items
    q = next((q for q in quotas if q.metadata.name == "prod-quota"), None)
    if q is None:
        return Verdict.not_yet(f"there is no ResourceQuota 'prod-quota' in namespace {t.namespace!r} yet")
    exprs = (q.spec.scope_selector.match_expressions if q.spec.scope_selector else None) or []
    scoped = any(e.scope_name == "PriorityClass" and e.operator == "In" and e.values == ["production"] for e in exprs)
    if not scoped or (q.spec.hard or {}).get("pods") != "2":
        return Verdict.not_yet("prod-quota must allow pods: 2, scoped with a scopeSelector to PriorityClass In [production]")
    pods = [p for p in t.core.list_namespaced_pod(t.namespace).items if not p.metadata.deletion_timestamp]
    prod = [p for p in pods if p.spec.priority_class_name == "production"]
    other = [p for p in pods if p.spec.priority_class_name != "production"]
    used = ((q.status.used if q.status else None) or {}).get("pods")
    if len(prod) != 2 or used != "2":
        return Verdict.not_yet(f"the quota should be full: 2 production pods and used pods=2 (now {len(prod)} "
                               f"production pods, used {used})")
    if not other:
        return Verdict.not_yet("also run a pod of another band (batch): it must be admitted, because the quota "
                               "does not select it")
    return Verdict.ok(f"2 production pods admitted, the third refused; {len(other)} other pod(s) not counted")


def _solve_quota(t: Target) -> None:
    from kubernetes import client

    t.core.create_namespaced_resource_quota(t.namespace, {"metadata": {"name": "prod-quota"}, "spec": {
        "hard": {"pods": "2"},
        "scopeSelector": {"matchExpressions": [{"scopeName": "PriorityClass", "operator": "In",
                                                "values": ["production"]}]}}})
    import time

    for _ in range(100):  # the quota controller fills in status.hard; admission waits for it
        q = t.core.read_namespaced_resource_quota("prod-quota", t.namespace)
        if q.status and q.status.hard:
            break
        time.sleep(0.1)
    for i in (1, 2, 3):
        try:
            t.core.create_namespaced_pod(t.namespace, _pod(f"prod-{i}", "production"))
        except client.ApiException as exc:
            if exc.status != 403:
                raise
    t.core.create_namespaced_pod(t.namespace, _pod("batch-1", "batch"))


def _verify_polite(t: Target) -> Verdict:
    try:
        pod = t.core.read_namespaced_pod("polite", t.namespace)
    except Exception:
        return Verdict.not_yet(f"there is no pod 'polite' in namespace {t.namespace!r} yet")
    if pod.spec.priority != 1000:
        return Verdict.not_yet(f"polite has priority {pod.spec.priority}; its class must have the production value, 1000")
    if pod.spec.preemption_policy != "Never":
        return Verdict.not_yet(f"polite's preemptionPolicy is {pod.spec.preemption_policy}; the apiserver copies it "
                               "from the pod's PriorityClass, so make a class that says Never")
    return Verdict.ok("polite has production's priority and will wait rather than preempt")


def _solve_polite(t: Target) -> None:
    from kubernetes import client

    try:
        client.SchedulingV1Api(t.api_client).create_priority_class(
            {"metadata": {"name": "production-polite"}, "value": 1000, "preemptionPolicy": "Never"})
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    t.core.create_namespaced_pod(t.namespace, _pod("polite", "production-polite"))


EXERCISES = [
    Exercise(
        id="40.1", title="Quota for one band only",
        statement="""In your namespace, create a ResourceQuota named `prod-quota` that admits at most two pods
of the PriorityClass `production` and counts no other pods (a `scopeSelector` on `PriorityClass`).
Then try to run three production pods and one `batch` pod. Two production pods and the batch pod
must be admitted; the third production pod must be refused at admission.""",
        setup=_classes, verify=_verify_quota, solution=_solve_quota,
        solution_text="""```yaml
apiVersion: v1
kind: ResourceQuota
metadata: {name: prod-quota}
spec:
  hard: {pods: "2"}
  scopeSelector:
    matchExpressions: [{scopeName: PriorityClass, operator: In, values: [production]}]
```
Then three pods with `priorityClassName: production` (the third gets 403 "exceeded quota") and one
with `priorityClassName: batch`.""",
        concept="quota checked at admission, per priority", difficulty="medium", cluster={"nodes": 2}),
    Exercise(
        id="40.2", title="A production pod that waits instead of preempting",
        statement="""Run a pod named `polite` (image `busybox`, command `sleep 3600`) that has the same priority
as the `production` band (1000) but never preempts other pods. You cannot set `spec.priority` or
`spec.preemptionPolicy` yourself: the apiserver fills them in from the pod's PriorityClass.""",
        setup=_classes, verify=_verify_polite, solution=_solve_polite,
        solution_text="""A PriorityClass `production-polite` with `value: 1000` and `preemptionPolicy: Never`, and a pod
with `priorityClassName: production-polite`.""",
        concept="PriorityClass and preemptionPolicy", difficulty="easy", cluster={"nodes": 2}),
]
