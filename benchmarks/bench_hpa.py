"""HPA reaction time: from starting load on a Deployment until its new replicas are Ready.

For each sync period (labkit's lab setting, 2 s, and Kubernetes' default, 15 s) one in-process
cluster runs ``--rounds`` rounds. A round makes a busybox ``httpd`` Deployment (10m CPU request),
its Service and an ``autoscaling/v2`` HPA (50 % CPU, 1..3 replicas), waits for the HPA's first
reading, then starts a load-generator pod (a ``wget`` loop against the Service) and times

* **decision**: load start until the HPA raises ``spec.replicas`` (sync phase + the kubelet's 5 s
  CPU-rate window + one metrics.k8s.io read);
* **ready**: load start until a second pod is Ready (decision + scheduling + container start).

The load starts at a random point of the sync period (seeded). The two periods' figures are
printed side by side: with period P the decision waits on average about P/2 for the next sync,
so the gap between the rows is mostly half the period.

    .venv/bin/python benchmarks/bench_hpa.py [--rounds 3] [--periods 2,15]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from labkit.cluster import Cluster


def wait(pred, what: str, timeout: float = 120.0, every: float = 0.05):
    t0 = time.monotonic()
    while not (v := pred()):
        if time.monotonic() - t0 > timeout:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(every)
    return v


def one_round(c: Cluster, i: int, phase: float) -> tuple[float, float]:
    from kubernetes import client

    core, apps, hpas = c.core(), c.apps(), client.AutoscalingV2Api(c.client())
    name = f"web{i}"
    script = f"mkdir -p /www && echo {name} > /www/index.html && exec httpd -f -p 8080 -h /www"
    apps.create_namespaced_deployment("default", {"metadata": {"name": name}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": {
            "terminationGracePeriodSeconds": 0, "containers": [{
                "name": "httpd", "image": "busybox", "command": ["sh", "-c", script],
                "resources": {"requests": {"cpu": "10m"}}}]}}}})
    svc = core.create_namespaced_service("default", {"metadata": {"name": name}, "spec": {
        "selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}})
    hpas.create_namespaced_horizontal_pod_autoscaler("default", {"metadata": {"name": name}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "minReplicas": 1, "maxReplicas": 3, "metrics": [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]}})

    def reading():
        h = hpas.read_namespaced_horizontal_pod_autoscaler(name, "default")
        return h.status and h.status.current_metrics

    wait(reading, f"{name}'s first HPA reading")  # a sync has just run
    time.sleep(phase)  # start the load somewhere in the period, as a real load would
    t0 = time.monotonic()
    core.create_namespaced_pod("default", {"metadata": {"name": f"load{i}"}, "spec": {
        "terminationGracePeriodSeconds": 0, "containers": [{"name": "load", "image": "busybox", "command": [
            "sh", "-c", f"while true; do wget -q -O /dev/null http://{svc.spec.cluster_ip}/; done"]}]}})
    wait(lambda: (apps.read_namespaced_deployment(name, "default").spec.replicas or 0) > 1, "a scale-up")
    decision = time.monotonic() - t0
    wait(lambda: (apps.read_namespaced_deployment(name, "default").status.ready_replicas or 0) >= 2, "Ready pods")
    ready = time.monotonic() - t0
    core.delete_namespaced_pod(f"load{i}", "default", grace_period_seconds=0)
    hpas.delete_namespaced_horizontal_pod_autoscaler(name, "default")
    apps.delete_namespaced_deployment(name, "default")
    core.delete_namespaced_service(name, "default")
    return decision, ready


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--periods", default="2,15", help="HPA sync periods to compare, seconds, comma-separated")
    a = ap.parse_args()
    rows = []
    for period in (float(p) for p in a.periods.split(",")):
        with Cluster(nodes=2, store="memory", processes=False, hpa_sync_period=period) as c:
            rng = random.Random(period)
            got = [one_round(c, i, rng.uniform(0, period)) for i in range(a.rounds)]
        rows.append((period, got))
        print(f"sync period {period:g} s: " + ", ".join(f"decision {d:.1f} s / ready {r:.1f} s" for d, r in got),
              flush=True)
    print()
    print(f"{'HPA sync period':>16}  {'rounds':>6}  {'load -> scale decision (s)':>28}  {'load -> replicas Ready (s)':>28}")
    for period, got in rows:
        d = [x for x, _ in got]
        r = [y for _, y in got]
        label = f"{period:g} s" + (" (kube default)" if period == 15 else " (labkit lab)" if period == 2 else "")
        print(f"{label:>16}  {len(got):>6}  {statistics.mean(d):>10.1f} (min {min(d):.1f}, max {max(d):.1f})"
              f"  {statistics.mean(r):>10.1f} (min {min(r):.1f}, max {max(r):.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
