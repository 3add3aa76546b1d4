#!/usr/bin/env python
"""Creates per second for each store - memory, sqlite and real etcd - measured side by side in one run.

Two levels:

* **store**: ``store.create()`` in a loop, one writer and then several concurrent writers (the
  concurrent case is where sqlite's group commit shares one fsync between many writes);
* **API**: ``POST /api/v1/namespaces/default/configmaps`` against labkit's apiserver started
  in-process on each store, when the apiserver package can be started (see ``_api_server``).

The goal from the issue: sqlite >= 3x etcd in creates/s through the API. etcd 3.4 through its JSON
gateway does about 610 sequential puts/s on this machine.

    .venv/bin/python benchmarks/bench_store.py [--n 2000] [--threads 8] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labkit.controlplane.store import Store, open_store  # noqa: E402

POD = json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "namespace": "default",
                  "labels": {"app": "bench"}}, "spec": {"containers": [
                      {"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}}).encode() * 2


@contextlib.contextmanager
def stores(tmp: Path) -> Iterator[list[tuple[str, Callable[[], Store], str]]]:
    """(name, factory, detail) for each backend available here; etcd is started and stopped."""
    out: list[tuple[str, Callable[[], Store], str]] = [("memory", lambda: open_store("memory"), "in-process")]
    counter = iter(range(1000))
    out.append(("sqlite", lambda: open_store(f"sqlite:{tmp / f'bench-{next(counter)}.db'}"),
                "WAL, synchronous=FULL"))
    cluster = None
    if shutil.which("etcd"):
        from labkit.controlplane.store.etcd_server import EtcdCluster, etcd_version

        cluster = EtcdCluster(members=1)
        cluster.start()
        out.append(("etcd", lambda: open_store(cluster.url), f"etcd {etcd_version()}, 1 member, JSON gateway"))
    else:
        print("etcd is not installed: the etcd column is skipped (apt-get install etcd-server)")
    try:
        yield out
    finally:
        if cluster is not None:
            cluster.stop()


def creates_per_second(store: Store, n: int, threads: int, tag: str) -> float:
    def work(t: int, count: int) -> None:
        for i in range(count):
            store.create(f"/registry/pods/{tag}/t{t}-{i}", POD)

    per = n // threads
    workers = [threading.Thread(target=work, args=(t, per)) for t in range(threads)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return per * threads / (time.perf_counter() - t0)


def bench_store_level(backends, n: int, threads: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    for name, factory, _ in backends:
        store = factory()
        try:
            store.create("/warmup", b"x")
            results[name] = {
                "1 writer": creates_per_second(store, n, 1, "seq"),
                f"{threads} writers": creates_per_second(store, n, threads, "par"),
            }
        finally:
            store.close()
    return results


def _api_server(store: Store):
    """Start labkit's apiserver in-process on ``store``; returns (base_url, stop) or None."""
    try:
        from labkit.controlplane.apiserver.server import APIServer
    except ImportError as exc:
        print(f"(the apiserver cannot be imported: {exc})")
        return None
    server = APIServer(store).start()
    return server.url, server.stop


def bench_api_level(backends, n: int, threads: int) -> dict[str, dict[str, float]] | None:
    import http.client
    from urllib.parse import urlsplit

    results: dict[str, dict[str, float]] = {}
    for name, factory, _ in backends:
        store = factory()
        started = _api_server(store)
        if started is None:
            store.close()
            return None
        url, stop = started
        parts = urlsplit(url)
        try:
            def post_many(t: int, count: int, tag: str, parts=parts) -> None:
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                for i in range(count):
                    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                       "metadata": {"name": f"{tag}-{t}-{i}"}, "data": {"k": "v" * 200}})
                    conn.request("POST", "/api/v1/namespaces/default/configmaps", body,
                                 {"Content-Type": "application/json"})
                    resp = conn.getresponse()
                    resp.read()
                    if resp.status != 201:
                        raise RuntimeError(f"create through the API failed: {resp.status}")
                conn.close()

            def rate(count: int, nthreads: int, tag: str) -> float:
                per = count // nthreads
                ws = [threading.Thread(target=post_many, args=(t, per, tag)) for t in range(nthreads)]
                t0 = time.perf_counter()
                for w in ws:
                    w.start()
                for w in ws:
                    w.join()
                return per * nthreads / (time.perf_counter() - t0)

            post_many(0, 10, "warm")
            results[name] = {"1 client": rate(n, 1, "seq"), f"{threads} clients": rate(n, threads, "par")}
        finally:
            stop()
            store.close()
    return results


def print_table(title: str, results: dict[str, dict[str, float]], details: dict[str, str]) -> None:
    cols = list(next(iter(results.values())).keys())
    print(f"\n{title}")
    print(f"{'store':<8}" + "".join(f"{c + ' /s':>16}" for c in cols) + "   backend")
    for name, row in results.items():
        print(f"{name:<8}" + "".join(f"{row[c]:>16,.0f}" for c in cols) + f"   {details[name]}")
    if "etcd" in results and "sqlite" in results:
        for c in cols:
            ratio = results["sqlite"][c] / results["etcd"][c]
            print(f"sqlite / etcd ({c}): {ratio:.1f}x")
        if "memory" in results:
            c = cols[0]
            print(f"memory / sqlite ({c}): {results['memory'][c] / results['sqlite'][c]:.1f}x")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="creates per measurement")
    ap.add_argument("--threads", type=int, default=8, help="concurrent writers in the second column")
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="labkit-bench-store-"))
    report: dict = {}
    try:
        with stores(tmp) as backends:
            details = {name: d for name, _, d in backends}
            store_level = bench_store_level(backends, args.n, args.threads)
            report["store"] = store_level
            print_table("Store level: store.create() per second", store_level, details)
            api_level = bench_api_level(backends, args.n, args.threads)
            if api_level is None:
                print("\nThrough the API: skipped (labkit.controlplane.apiserver cannot be started in-process yet)")
            else:
                report["api"] = api_level
                print_table("Through the API: POST configmaps per second", api_level, details)
                goal = api_level.get("sqlite", {}).get("1 client", 0) / max(api_level.get("etcd", {}).get(
                    "1 client", 0), 1e-9)
                print(f"goal sqlite >= 3x etcd through the API: {'met' if goal >= 3 else 'NOT met'} ({goal:.1f}x)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
