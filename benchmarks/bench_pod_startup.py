"""Pod startup latency on real containers: create -> Running, as a client watching the API sees it.

A whole cluster runs as separate processes (apiserver, scheduler, controller-manager, kubelets
with their CRI servers). Pods are created a few at a time; each pod's latency is the time from
just before its POST to the watch event that shows it Running — the Kubernetes pod startup SLO's
definition (p99 <= 5 s, for pods whose image is already on the node). Goal here: p99 <= 0.5 s.

    .venv/bin/python benchmarks/bench_pod_startup.py [--pods 60] [--runtimes native,runc,docker]
"""

from __future__ import annotations

import argparse
import threading
import time

from kubernetes import watch

from labkit.cluster import Cluster

SLO = 5.0
GOAL = 0.5


def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def measure(runtime: str | None, pods: int, parallel: int) -> dict:
    with Cluster(nodes=3, runtime=runtime, processes=True, store="sqlite") as c:
        core = c.core()
        created: dict[str, float] = {}
        running: dict[str, float] = {}
        done = threading.Event()

        def follow() -> None:
            w = watch.Watch()
            for ev in w.stream(core.list_namespaced_pod, "default", label_selector="bench=startup",
                               timeout_seconds=300):
                p = ev["object"]
                if p.status.phase == "Running" and p.metadata.name not in running:
                    running[p.metadata.name] = time.time()
                    if len(running) == pods:
                        w.stop()
            done.set()

        t = threading.Thread(target=follow, daemon=True)
        t.start()
        time.sleep(0.5)
        for i in range(pods):
            while len(created) - len(running) >= parallel:
                time.sleep(0.002)
            name = f"start-{i:03d}"
            created[name] = time.time()
            core.create_namespaced_pod("default", {
                "metadata": {"name": name, "labels": {"bench": "startup"}},
                "spec": {"terminationGracePeriodSeconds": 0,
                         "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}})
        done.wait(300)
        lat = [running[n] - created[n] for n in created if n in running]
        node = core.list_node().items[0].status.node_info.container_runtime_version
        return {"runtime": c.runtime_name, "node_runtime": node, "n": len(lat), "p50": pct(lat, 50),
                "p90": pct(lat, 90), "p99": pct(lat, 99), "max": max(lat)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=60)
    ap.add_argument("--parallel", type=int, default=3, help="pods being started at once")
    ap.add_argument("--runtimes", default="default,runc,docker")
    args = ap.parse_args()
    rows = []
    for rt in args.runtimes.split(","):
        try:
            r = measure(None if rt == "default" else rt, args.pods, args.parallel)
        except Exception as exc:  # noqa: BLE001 - a runtime this host lacks: say so, go on
            print(f"{rt}: skipped ({str(exc).splitlines()[0][:120]})")
            continue
        rows.append(r)
        print(f"{r['runtime']}: {r['n']} pods measured ({r['node_runtime']})")
    print()
    print(f"{'runtime':<10}{'pods':>6}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'p99 vs SLO 5 s':>17}{'p99 vs goal 0.5 s':>20}")
    for r in rows:
        print(f"{r['runtime']:<10}{r['n']:>6}{r['p50'] * 1000:>9.0f}{r['p90'] * 1000:>9.0f}{r['p99'] * 1000:>9.0f}"
              f"{r['max'] * 1000:>9.0f}{r['p99'] / SLO:>16.2f}x{r['p99'] / GOAL:>19.2f}x")
    print(f"\nanchors: Kubernetes pod startup SLO p99 <= {SLO:.0f} s; goal here p99 <= {GOAL} s "
          "(ratio < 1 means better than the anchor); 3 nodes, each component its own process, "
          f"{args.parallel} pods starting at a time")


if __name__ == "__main__":
    main()
