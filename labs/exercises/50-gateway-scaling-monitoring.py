"""Lab 50's exercises: an autoscaler with a floor, a readiness gate, and a liveness restart."""

from __future__ import annotations

from labkit.practice import Exercise, Target, Verdict


def _autoscaling(t: Target):
    from kubernetes import client

    return client.AutoscalingV2Api(t.api_client)


def _setup_api(t: Target) -> None:
    t.apps.create_namespaced_deployment(t.namespace, {"metadata": {"name": "api"}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": "api"}},
        "template": {"metadata": {"labels": {"app": "api"}}, "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "app", "image": "busybox", "command": ["sleep", "3600"],
                            "resources": {"requests": {"cpu": "50m"}}}]}}}})


def _verify_hpa(t: Target) -> Verdict:
    from kubernetes.client.exceptions import ApiException

    try:
        hpa = _autoscaling(t).read_namespaced_horizontal_pod_autoscaler("api", t.namespace)
    except ApiException as exc:
        if exc.status == 404:
            return Verdict.not_yet(f"there is no HorizontalPodAutoscaler 'api' in namespace {t.namespace!r} yet")
        raise
    spec = hpa.spec
    if spec.scale_target_ref.kind != "Deployment" or spec.scale_target_ref.name != "api":
        return Verdict.not_yet("the autoscaler must scale the Deployment 'api' (scaleTargetRef)")
    targets = [m.resource.target.average_utilization for m in spec.metrics or []
               if m.type == "Resource" and m.resource and m.resource.name == "cpu"]
    if (spec.min_replicas, spec.max_replicas, targets) != (2, 4, [60]):
        return Verdict.not_yet(f"want min 2, max 4 and a 60 % CPU target; have min {spec.min_replicas}, "
                               f"max {spec.max_replicas}, CPU targets {targets}")
    d = t.deployment("api")
    if d is None or (d.spec.replicas or 0) < 2:
        return Verdict.not_yet("the autoscaler has not yet raised 'api' to its floor of 2 replicas (it looks at "
                               "each HPA every sync period)")
    return Verdict.ok(f"the autoscaler keeps 'api' between 2 and 4 replicas; it has {d.spec.replicas} now")


def _solve_hpa(t: Target) -> None:
    _autoscaling(t).create_namespaced_horizontal_pod_autoscaler(t.namespace, {
        "metadata": {"name": "api"}, "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
            "minReplicas": 2, "maxReplicas": 4, "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}]}})


def _setup_gate(t: Target) -> None:
    t.core.create_namespaced_service(t.namespace, {"metadata": {"name": "gate"}, "spec": {
        "selector": {"app": "gate"}, "ports": [{"port": 80, "targetPort": 8080}]}})


def _verify_gate(t: Target) -> Verdict:
    pod = t.pod("gate")
    if pod is None:
        return Verdict.not_yet(f"there is no pod 'gate' in namespace {t.namespace!r} yet")
    if (pod.metadata.labels or {}).get("app") != "gate":
        return Verdict.not_yet("the pod needs the label app=gate, or the Service 'gate' does not select it")
    probes = [c.readiness_probe for c in pod.spec.containers if c.readiness_probe]
    if not probes or not probes[0].http_get or probes[0].http_get.path != "/ready":
        return Verdict.not_yet("give the container a readinessProbe that is an httpGet of /ready on port 8080")
    if pod.status.phase != "Running" or not pod.status.pod_ip:
        return Verdict.not_yet(f"the pod is {pod.status.phase}; wait until it runs")
    ep = t.core.read_namespaced_endpoints("gate", t.namespace)
    ready = [a.ip for s in ep.subsets or [] for a in s.addresses or []]
    waiting = [a.ip for s in ep.subsets or [] for a in s.not_ready_addresses or []]
    if pod.status.pod_ip in ready:
        return Verdict.not_yet("the pod is in the Service's ready endpoints: /ready must not exist yet")
    if pod.status.pod_ip not in waiting:
        return Verdict.not_yet("the pod's address is not yet listed as not ready in the Endpoints 'gate'")
    return Verdict.ok(f"{pod.status.pod_ip} runs but waits in notReadyAddresses: no traffic reaches it yet")


def _solve_gate(t: Target) -> None:
    t.core.create_namespaced_pod(t.namespace, {"metadata": {"name": "gate", "labels": {"app": "gate"}}, "spec": {
        "terminationGracePeriodSeconds": 0, "containers": [{
            "name": "httpd", "image": "busybox",
            "command": ["sh", "-c", "mkdir -p /www && echo hi > /www/index.html && exec httpd -f -p 8080 -h /www"],
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1}}]}})


def _verify_phoenix(t: Target) -> Verdict:
    pod = t.pod("phoenix")
    if pod is None:
        return Verdict.not_yet(f"there is no pod 'phoenix' in namespace {t.namespace!r} yet")
    probes = [c.liveness_probe for c in pod.spec.containers if c.liveness_probe]
    if not probes or not probes[0]._exec:
        return Verdict.not_yet("give the container a livenessProbe that runs a command (exec)")
    restarts = sum(s.restart_count for s in pod.status.container_statuses or [])
    if restarts < 1:
        return Verdict.not_yet("the container has not been restarted yet; does the probe's command start failing?")
    return Verdict.ok(f"the kubelet restarted phoenix's container {restarts} time(s) after its liveness probe failed")


def _solve_phoenix(t: Target) -> None:
    t.core.create_namespaced_pod(t.namespace, {"metadata": {"name": "phoenix"}, "spec": {
        "terminationGracePeriodSeconds": 0, "containers": [{
            "name": "app", "image": "busybox",
            "command": ["sh", "-c", "touch /tmp/ok; sleep 2; rm /tmp/ok; sleep 3600"],
            "livenessProbe": {"exec": {"command": ["cat", "/tmp/ok"]}, "periodSeconds": 1,
                              "failureThreshold": 1}}]}})


EXERCISES = [
    Exercise(
        id="50.1", title="An autoscaler with a floor",
        statement="""The Deployment `api` in your namespace runs one pod that asks for 50 millicores.
Create a HorizontalPodAutoscaler named `api` (`autoscaling/v2`) that keeps it between **2** and
**4** replicas at a **60 %** CPU target. Even with no load the HPA must raise `api` to 2 pods.""",
        setup=_setup_api, verify=_verify_hpa, solution=_solve_hpa,
        solution_text="""`kubectl autoscale deployment api --cpu-percent=60 --min=2 --max=4`, or:
```yaml
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: api}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: api}
  minReplicas: 2
  maxReplicas: 4
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}
```""",
        concept="HPA bounds", difficulty="easy", cluster={"nodes": 1}),
    Exercise(
        id="50.2", title="Ready only when it says so",
        statement="""The Service `gate` in your namespace selects pods labelled `app=gate` on port 8080.
Run a pod `gate` with that label: busybox `httpd -f -p 8080 -h /www` serving a folder that has an
`index.html` but **no** `ready` file, and a readiness probe that is an `httpGet` of `/ready` on
port 8080. The pod must run while its address stays out of the Service's ready endpoints.""",
        setup=_setup_gate, verify=_verify_gate, solution=_solve_gate,
        solution_text="""```yaml
apiVersion: v1
kind: Pod
metadata: {name: gate, labels: {app: gate}}
spec:
  containers:
  - name: httpd
    image: busybox
    command: [sh, -c, "mkdir -p /www && echo hi > /www/index.html && exec httpd -f -p 8080 -h /www"]
    readinessProbe: {httpGet: {path: /ready, port: 8080}, periodSeconds: 1}
```
`kubectl get endpoints gate -o yaml` lists its IP under `notReadyAddresses`.""",
        concept="readiness removes an endpoint", difficulty="medium", cluster={"nodes": 1}),
    Exercise(
        id="50.3", title="A liveness probe that restarts",
        statement="""Run a pod `phoenix` (busybox) whose container creates `/tmp/ok`, deletes it two
seconds later and then sleeps. Give it an `exec` liveness probe that reads the file every second
and fails on the first miss. The kubelet must restart the container at least once.""",
        verify=_verify_phoenix, solution=_solve_phoenix,
        solution_text="""```yaml
apiVersion: v1
kind: Pod
metadata: {name: phoenix}
spec:
  containers:
  - name: app
    image: busybox
    command: [sh, -c, "touch /tmp/ok; sleep 2; rm /tmp/ok; sleep 3600"]
    livenessProbe: {exec: {command: [cat, /tmp/ok]}, periodSeconds: 1, failureThreshold: 1}
```""",
        concept="liveness restarts a container", difficulty="easy", cluster={"nodes": 1}),
]
