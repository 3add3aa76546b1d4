"""Scheduling throughput: 5,000 hollow nodes, 10,000 pods, every bind through the API.

The shape of kube-scheduler's scheduler_perf "SchedulingBasic 5000Nodes_10000Pods" workload,
whose minimum threshold is 680 pods/s. The apiserver runs as its own process (memory store);
the scheduler runs here, with its informers, numpy node table and concurrent binds.

    .venv/bin/python benchmarks/bench_scheduler.py [--nodes 5000] [--pods 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

from labkit.client import Client
from labkit.client.kubeconfig import write_kubeconfig
from labkit.controlplane.scheduler.scheduler import Scheduler
from labkit.node.kubelet.hollow import HollowNodes

ANCHOR = 680.0  # scheduler_perf threshold for this shape, pods/s
GOAL = 1000.0


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def create_pods(client: Client, ns: str, n: int, conc: int = 64) -> None:
    sem = asyncio.Semaphore(conc)

    async def one(i: int) -> None:
        async with sem:
            await client.create("pods", {"metadata": {"name": f"p-{i:05d}", "namespace": ns}, "spec": {
                "containers": [{"name": "c", "image": "busybox",
                                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}, namespace=ns)

    await asyncio.gather(*(one(i) for i in range(n)))


async def run(url: str, nodes: int, pods: int, events: bool, ns: str) -> dict:
    kc = tempfile.mktemp(prefix="labkit-bench-", suffix=".kubeconfig")
    write_kubeconfig(kc, url)
    client = Client(kc, pool=128)
    try:
        await client.create("namespaces", {"metadata": {"name": ns}})
        await create_pods(client, ns, pods)
        sched = Scheduler(client, events=events, bind_concurrency=128)
        task = asyncio.create_task(sched.run())
        await sched.nodes.wait_synced(120)
        await sched.pods.wait_synced(120)
        t0 = time.perf_counter()
        while sched.bound + sched.failed < pods:
            await asyncio.sleep(0.01)
            if time.perf_counter() - t0 > 600:
                break
        elapsed = time.perf_counter() - t0
        if sched.events:
            t_ev = time.perf_counter()
            await sched.events.flush()  # events trail the binds (bounded in flight); wait for them
            events_after = time.perf_counter() - t_ev
        else:
            events_after = 0.0
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        lst = await client.list("pods", ns)
        bound = sum(1 for p in lst["items"] if (p.get("spec") or {}).get("nodeName"))
        per_node: dict[str, int] = {}
        for p in lst["items"]:
            n = p["spec"].get("nodeName")
            per_node[n] = per_node.get(n, 0) + 1
        return {"elapsed": elapsed, "events_after": events_after, "bound": bound, "rate": bound / elapsed, "failed": sched.failed,
                "max_per_node": max(per_node.values()) if per_node else 0, "nodes_used": len(per_node)}
    finally:
        await client.close()
        os.unlink(kc)


async def register(url: str, nodes: int) -> None:
    kc = tempfile.mktemp(prefix="labkit-bench-", suffix=".kubeconfig")
    write_kubeconfig(kc, url)
    client = Client(kc, pool=128)
    try:
        h = HollowNodes(client, nodes, run_pods=False, register_concurrency=64)
        await h.start(heartbeat=False)
    finally:
        await client.close()
        os.unlink(kc)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--store", default="memory")
    args = ap.parse_args()
    port = free_port()
    api = subprocess.Popen([sys.executable, "-m", "labkit.controlplane.apiserver", "--port", str(port),
                            "--store", args.store], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(url + "/version", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        t = time.perf_counter()
        asyncio.run(register(url, args.nodes))
        print(f"registered {args.nodes} hollow nodes in {time.perf_counter() - t:.1f}s "
              f"(apiserver process, store {args.store})")
        rows = []
        for events in (False, True):
            ns = f"bench-{'ev' if events else 'noev'}"
            t = time.perf_counter()
            r = asyncio.run(run(url, args.nodes, args.pods, events, ns))
            r["label"] = "binds + Scheduled events" if events else "binds only"
            rows.append(r)
            print(f"  {r['label']}: created {args.pods} pods, then scheduled in {r['elapsed']:.1f}s "
                  f"({time.perf_counter() - t:.0f}s including pod creation"
                  + (f"; the Scheduled events finished {r['events_after']:.1f}s after the last bind)" if events else ")"))
            # the second round shares the nodes: pods from round one still count against them
        print()
        print(f"{'run':<28}{'pods bound':>11}{'seconds':>9}{'pods/s':>9}{'vs 680':>8}{'vs goal 1000':>14}"
              f"{'nodes used':>12}{'max/node':>10}")
        for r in rows:
            print(f"{r['label']:<28}{r['bound']:>11}{r['elapsed']:>9.1f}{r['rate']:>9.0f}{r['rate'] / ANCHOR:>7.2f}x"
                  f"{r['rate'] / GOAL:>13.2f}x{r['nodes_used']:>12}{r['max_per_node']:>10}")
        print(f"\nanchor: kube-scheduler scheduler_perf threshold {ANCHOR:.0f} pods/s for "
              f"5000 nodes / 10000 pods; goal here >= {GOAL:.0f} pods/s")
    finally:
        api.terminate()
        api.wait(10)


if __name__ == "__main__":
    main()
