#!/usr/bin/env python
"""5,000 nodes and 150,000 pods held by the apiserver: API latency p50/p99 and memory, side by side.

Kubernetes' own limits are 5,000 nodes and 150,000 pods, and its SLO for API calls is p99 <= 1 s.
The apiserver runs as a separate process on the memory store. Filling it through HTTP would take
minutes, so it is filled on the fast path: the objects are encoded exactly as the API would store
them and written to the store directly, before the port opens. Then this script measures real
HTTP calls against it: get, paginated list (limit=500, what informers and kubectl use), a list of one
namespace, a field-selected list (what a kubelet does at start), the full node list, create,
binding and status update. Memory is the server's resident set size.

    .venv/bin/python benchmarks/bench_api_scale.py [--nodes 5000] [--pods 150000] [--samples 300]
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
PODS_PER_NS = 50


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node(i: int) -> dict:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": f"node-{i:05d}", "uid": f"n-{i}", "creationTimestamp": "2026-01-01T00:00:00Z",
                         "labels": {"kubernetes.io/hostname": f"node-{i:05d}", "kubernetes.io/os": "linux"}},
            "spec": {},
            "status": {"capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                       "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                       "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                       "nodeInfo": {"kubeletVersion": "v1.30.0-labkit", "containerRuntimeVersion": "labkit://0.1"}}}


def pod(i: int, nodes: int) -> dict:
    ns = f"ns-{i // PODS_PER_NS:05d}"
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"pod-{i:06d}", "namespace": ns, "uid": f"p-{i}",
                         "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"app": f"app-{i % 100}"}},
            "spec": {"containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "inf"],
                                     "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                                     "imagePullPolicy": "IfNotPresent",
                                     "terminationMessagePath": "/dev/termination-log"}],
                     "nodeName": f"node-{i % nodes:05d}", "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                     "schedulerName": "default-scheduler", "terminationGracePeriodSeconds": 30},
            "status": {"phase": "Running", "podIP": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": "main", "ready": True, "restartCount": 0,
                                              "image": "busybox:1.36", "imageID": "", "state": {"running": {}}}]}}


def serve(port: int, nodes: int, pods: int) -> None:
    """Child process: fill a memory store on the fast path, then serve it."""
    sys.setswitchinterval(0.0005)
    from labkit.controlplane.apiserver import APIServer
    from labkit.controlplane.apiserver.codec import encode
    from labkit.controlplane.store import open_store

    store = open_store("memory")
    t0 = time.perf_counter()
    items = [(f"/registry/nodes/{node(i)['metadata']['name']}", node(i)) for i in range(nodes)]
    for n in range((pods + PODS_PER_NS - 1) // PODS_PER_NS):
        name = f"ns-{n:05d}"
        items.append((f"/registry/namespaces/{name}", {
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "uid": name},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}))
    for i in range(pods):
        p = pod(i, nodes)
        items.append((f"/registry/pods/{p['metadata']['namespace']}/{p['metadata']['name']}", p))
    items.sort(key=lambda kv: kv[0])
    for key, obj in items:
        store.create(key, encode(obj))
    fill = time.perf_counter() - t0
    del items
    api = APIServer(store, port=port).start()
    print(json.dumps({"ready": api.url, "fill_s": fill}), flush=True)
    while True:
        time.sleep(3600)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=150_000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.nodes, args.pods)
        return 0
    port = free_port()
    t0 = time.perf_counter()
    child = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--nodes", str(args.nodes),
                              "--pods", str(args.pods)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = child.stdout.readline()  # type: ignore[union-attr]
        info = json.loads(line)
        url = info["ready"]
        rss = psutil.Process(child.pid).memory_info().rss
        print(f"filled {args.nodes} nodes + {args.pods} pods in {info['fill_s']:.1f} s "
              f"(store fast path); apiserver ready after {time.perf_counter() - t0:.1f} s")
        http = requests.Session()
        rnd = random.Random(7)
        nss = (args.pods + PODS_PER_NS - 1) // PODS_PER_NS

        def timed(fn, n: int) -> list[float]:
            out = []
            for i in range(n):
                t = time.perf_counter()
                fn(i)
                out.append(time.perf_counter() - t)
            return out

        def ok(r: requests.Response, code: int = 200) -> None:
            if r.status_code != code:
                raise SystemExit(f"unexpected {r.status_code}: {r.text[:300]}")

        def get_pod(_: int) -> None:
            i = rnd.randrange(args.pods)
            ok(http.get(f"{url}/api/v1/namespaces/ns-{i // PODS_PER_NS:05d}/pods/pod-{i:06d}"))

        def list_page(_: int) -> None:
            ok(http.get(f"{url}/api/v1/pods", params={"limit": "500"}))

        def list_ns(_: int) -> None:
            ok(http.get(f"{url}/api/v1/namespaces/ns-{rnd.randrange(nss):05d}/pods"))

        def list_node_pods(_: int) -> None:
            r = http.get(f"{url}/api/v1/pods", params={"fieldSelector": f"spec.nodeName=node-{rnd.randrange(args.nodes):05d}"})
            ok(r)

        def list_nodes(_: int) -> None:
            ok(http.get(f"{url}/api/v1/nodes"))

        new = iter(range(10**9))

        def create(_: int) -> None:
            body = {"metadata": {"name": f"new-{next(new)}"},
                    "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}
            ok(http.post(f"{url}/api/v1/namespaces/ns-00000/pods", json=body), 201)

        bound = iter(range(10**9))

        def bind(_: int) -> None:
            j = next(bound)
            body = {"metadata": {"name": f"new-{j}"}, "target": {"kind": "Node", "name": "node-00000"}}
            ok(http.post(f"{url}/api/v1/namespaces/ns-00000/pods/new-{j}/binding", json=body), 201)

        def status(_: int) -> None:
            i = rnd.randrange(args.pods)
            ok(http.patch(f"{url}/api/v1/namespaces/ns-{i // PODS_PER_NS:05d}/pods/pod-{i:06d}/status",
                          data=json.dumps({"status": {"conditions": [{"type": "Ready", "status": "True",
                                                                      "lastProbeTime": repr(time.time())}]}}),
                          headers={"Content-Type": "application/strategic-merge-patch+json"}))

        t = time.perf_counter()
        r = http.get(f"{url}/api/v1/pods")
        full = time.perf_counter() - t
        ok(r)
        n_items = len(r.json()["items"])
        s = args.samples
        cases = [
            ("GET pod", get_pod, s),
            ("LIST pods limit=500 (page 1)", list_page, max(s // 5, 20)),
            (f"LIST pods of one namespace ({PODS_PER_NS})", list_ns, s),
            ("LIST pods fieldSelector=spec.nodeName", list_node_pods, max(s // 10, 10)),
            (f"LIST nodes (all {args.nodes})", list_nodes, max(s // 20, 5)),
            ("CREATE pod", create, s),
            ("POST pods/binding", bind, s),
            ("PATCH pods/status", status, s),
        ]
        print(f"{'call':40} {'n':>5} {'p50 ms':>9} {'p99 ms':>9} {'p99 / 1s SLO':>13}")
        for name, fn, n in cases:
            lat = timed(fn, n)
            p99 = pct(lat, 99)
            print(f"{name:40} {n:>5} {pct(lat, 50) * 1e3:>9.2f} {p99 * 1e3:>9.2f} {p99:>12.1%}")
        print(f"{'LIST all pods, one response':40} {1:>5} {full * 1e3:>9.0f} {'':>9} "
              f"({n_items} items, {len(r.content) / 2**20:.0f} MiB; not an SLO call)")
        rss_after = psutil.Process(child.pid).memory_info().rss
        print(f"apiserver memory (RSS): {rss / 2**20:.0f} MiB after filling, {rss_after / 2**20:.0f} MiB after the "
              f"calls; {rss / (args.pods + args.nodes) / 1024:.1f} KiB per object held")
    finally:
        child.terminate()
        child.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
