"""Requests/s and latency through labkit's ingress controller, next to a direct connection to the pod.

One node, one busybox ``httpd`` pod behind a Service and an Ingress; the controller runs as its
own process (``python -m labkit.ingress``) on 127.0.0.1. The load generator (aiohttp's client,
N requests in flight) asks for the same small page either through the gateway (Host header
routing, a hop into the node's namespace, round-robin pick) or straight at the pod's address
from a socket made in the node's namespace. The two take turns round by round, so a busy
moment on a shared machine hits both alike, and each turn runs in a fresh process (the cluster's
threads in this one would hold the GIL against the client and slow whichever path does more work
in it). Ratios are gateway / direct.

    .venv/bin/python benchmarks/bench_ingress.py [--seconds 3] [--rounds 3] [--concurrency 1,16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from labkit.cluster import Cluster
from labkit.cluster.supervisor import free_port
from labkit.ingress import ingress_class
from labkit.ingress.upstreams import NodeSockets
from labkit.node.cni.topology import NODE_NS_PREFIX
from labkit.node.scope import cluster_scope, node_id

ROOT = Path(__file__).resolve().parents[1]


def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


async def load(url: str, host: str, seconds: float, concurrency: int, netns: str | None) -> tuple[float, list[float], int]:
    """Keep ``concurrency`` GETs in flight for ``seconds``; requests/s, latencies, failures."""
    factory = None
    if netns:
        sockets = NodeSockets(lambda _: netns)

        def factory(addr_info):  # the pod's address is reachable only from its node's namespace
            sock = sockets.socket("node", addr_info[0])
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as the gateway's own upstreams
            return sock
    connector = aiohttp.TCPConnector(limit=0, socket_factory=factory)
    latencies: list[float] = []
    failures = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        end = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal failures
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                try:
                    async with session.get(url, headers={"Host": host}) as r:
                        ok = r.status == 200 and await r.read() == b"hello from the pod\n"
                except aiohttp.ClientError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - t0)
                else:
                    failures += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return len(latencies) / elapsed, latencies, failures


def measure(url: str, seconds: float, concurrency: int, netns: str | None = None) -> tuple[float, list[float], int]:
    """One turn, in a fresh process: the cluster's threads here would hold the GIL against the client."""
    argv = [sys.executable, __file__, "--load", url, "--seconds", str(seconds), "--concurrency", str(concurrency)]
    out = subprocess.run(argv + (["--netns", netns] if netns else []), capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    if out.returncode != 0:
        raise SystemExit(f"load generator failed: {out.stderr[-2000:]}")
    rate, lat, fails = json.loads(out.stdout)
    return rate, lat, fails


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--load", help=argparse.SUPPRESS)  # one turn of the load generator (a child process)
    ap.add_argument("--netns", help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, default=3.0, help="length of one turn")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", default="1,16", help="requests in flight, comma-separated")
    a = ap.parse_args()
    if a.load:
        print(json.dumps(asyncio.run(load(a.load, "web.example", a.seconds, int(a.concurrency), a.netns))))
        return 0
    levels = [int(x) for x in a.concurrency.split(",")]

    with Cluster(nodes=1, store="sqlite", processes=True) as c:
        from kubernetes import client

        core, apps, net = c.core(), c.apps(), client.NetworkingV1Api(c.client())
        net.create_ingress_class(ingress_class("labkit"))
        core.create_namespaced_service("default", {"metadata": {"name": "web"}, "spec": {
            "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}})
        apps.create_namespaced_deployment("default", {"metadata": {"name": "web"}, "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{
                "name": "httpd", "image": "busybox", "command": ["sh", "-c",
                "mkdir -p /www && echo hello from the pod > /www/index.html && exec httpd -f -p 8080 -h /www"]}]}}}})
        net.create_namespaced_ingress("default", {"metadata": {"name": "web"}, "spec": {
            "ingressClassName": "labkit", "rules": [{"host": "web.example", "http": {"paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}})
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        gw = subprocess.Popen([sys.executable, "-m", "labkit.ingress", "--kubeconfig", c.kubeconfig,
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.time() + 60
            pod = None
            while time.time() < deadline:
                pods = [p for p in core.list_namespaced_pod("default").items if p.status.pod_ip
                        and p.status.phase == "Running"]
                if pods:
                    pod = pods[0]
                    rate, _, fails = asyncio.run(load(f"http://127.0.0.1:{port}/", "web.example", 0.2, 1, None))
                    if rate and not fails:
                        break
                time.sleep(0.3)
            else:
                raise SystemExit(f"the gateway never answered 200: {gw.stderr and gw.poll()}")
            direct_url = f"http://{pod.status.pod_ip}:8080/"
            node_ns = f"/run/netns/{NODE_NS_PREFIX}{node_id(pod.spec.node_name, cluster_scope(c.kubeconfig))}"
            gw_url = f"http://127.0.0.1:{port}/"
            results: dict[tuple[str, int], list[tuple[float, list[float], int]]] = {}
            for _ in range(a.rounds):
                for n in levels:
                    results.setdefault(("direct", n), []).append(
                        measure(direct_url, a.seconds, n, node_ns))
                    results.setdefault(("gateway", n), []).append(
                        measure(gw_url, a.seconds, n))
        finally:
            gw.terminate()
            gw.wait(10)

    print(f"\nIngress benchmark: {a.rounds} rounds x {a.seconds:.0f} s per contender and concurrency, "
          f"load average {'/'.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'path':<10}{'in flight':>10}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'failed':>8}")
    summary = {}
    for (who, n), runs in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0] != "direct")):
        rate = statistics.median(r[0] for r in runs)
        lat = [x for r in runs for x in r[1]]
        summary[(who, n)] = (rate, pct(lat, 50), pct(lat, 99))
        print(f"{who:<10}{n:>10}{rate:>10.0f}{pct(lat, 50) * 1000:>9.2f}{pct(lat, 99) * 1000:>9.2f}"
              f"{sum(r[2] for r in runs):>8}")
    print("\ngateway / direct:")
    for n in levels:
        g, d = summary[("gateway", n)], summary[("direct", n)]
        print(f"  {n:>3} in flight: req/s {g[0] / d[0]:.2f}x, p50 {g[1] / d[1]:.2f}x, p99 {g[2] / d[2]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
