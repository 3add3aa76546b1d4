#!/usr/bin/env python
"""Watch fan-out: how long an event takes to reach 1, 10 and 100 HTTP watchers, side by side.

The apiserver runs as its own process (``python -m labkit.controlplane.apiserver``, memory store);
this script opens N watch streams on ConfigMaps in one namespace, then updates one ConfigMap at a
steady pace. Each update carries its send time in an annotation; each watcher records when the
line arrived. Reported per watcher count: p50, p99 and max delivery latency over every
(event, watcher) pair, and the p99 ratio against a single watcher.

One apiserver store watch feeds all watchers (the watch cache), so the cost of a new watcher is
one more write of bytes that were encoded once; the last column shows the server's CPU time per
delivered event (setup and the updates included), which falls as watchers share the encoding.
Latency at 100 watchers also includes this script's own parsing of 100 streams on the same cores.

    .venv/bin/python benchmarks/bench_watch_fanout.py [--events 200] [--rate 50] [--watchers 1,10,100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def run_case(url: str, ns: str, watchers: int, events: int, rate: float) -> list[float]:
    latencies: list[float] = []
    ready = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=None)) as http:
        async with http.post(f"{url}/api/v1/namespaces", json={"metadata": {"name": ns}}) as r:
            assert r.status == 201, await r.text()
        async with http.post(f"{url}/api/v1/namespaces/{ns}/configmaps", json={"metadata": {"name": "tick"}}) as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
        done = asyncio.Event()
        remaining = [watchers]

        async def watcher() -> None:
            nonlocal ready
            seen = 0
            params = {"watch": "true", "resourceVersion": rv, "timeoutSeconds": "120"}
            async with http.get(f"{url}/api/v1/namespaces/{ns}/configmaps", params=params) as resp:
                ready += 1
                async for line in resp.content:
                    now = time.time()
                    ev = json.loads(line)
                    sent = (ev["object"]["metadata"].get("annotations") or {}).get("sent")
                    if ev["type"] == "MODIFIED" and sent:
                        latencies.append(now - float(sent))
                        seen += 1
                        if seen == events:
                            break
            remaining[0] -= 1
            if remaining[0] == 0:
                done.set()

        tasks = [asyncio.create_task(watcher()) for _ in range(watchers)]
        while ready < watchers:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        gap = 1.0 / rate
        start = time.monotonic()
        for i in range(events):
            patch = {"metadata": {"annotations": {"sent": repr(time.time())}}, "data": {"i": str(i)}}
            async with http.patch(f"{url}/api/v1/namespaces/{ns}/configmaps/tick", json=patch,
                                  headers={"Content-Type": "application/merge-patch+json"}) as r:
                assert r.status == 200, await r.text()
            delay = start + (i + 1) * gap - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await asyncio.wait_for(done.wait(), 60)
        for t in tasks:
            t.cancel()
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0, help="updates per second")
    parser.add_argument("--watchers", default="1,10,100")
    parser.add_argument("--store", default="memory")
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "labkit.controlplane.apiserver", "--port", str(port),
                               "--store", args.store], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = server.stdout.readline()  # type: ignore[union-attr]
        if "ready" not in line:
            print("the apiserver did not start:", line)
            return 1
        url = f"http://127.0.0.1:{port}"
        counts = [int(x) for x in args.watchers.split(",")]
        print(f"apiserver process, store={args.store}; {args.events} updates at {args.rate:g}/s per case")
        print(f"{'watchers':>8} {'deliveries':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'p99 vs 1':>9} "
              f"{'server CPU us/delivery':>23}")
        base = None
        proc = psutil.Process(server.pid)
        for n in counts:
            cpu0 = sum(proc.cpu_times()[:2])
            lat = asyncio.run(run_case(url, f"fanout-{n}", n, args.events, args.rate))
            cpu = sum(proc.cpu_times()[:2]) - cpu0
            p50, p99, mx = pct(lat, 50) * 1e3, pct(lat, 99) * 1e3, max(lat) * 1e3
            base = base or p99
            print(f"{n:>8} {len(lat):>10} {p50:>8.2f} {p99:>8.2f} {mx:>8.2f} {p99 / base:>8.1f}x "
                  f"{cpu / max(len(lat), 1) * 1e6:>23.0f}")
            assert len(lat) == n * args.events, "a watcher missed events"
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
