#!/usr/bin/env python
"""Creates per second for each store - memory, sqlite and real etcd - measured side by side in one run.

Two levels:

* **store**: ``store.create()`` in a loop, one writer and then several concurrent writers (the
  concurrent case is where sqlite's group commit shares one fsync between many writes);
* **API**: ``POST /api/v1/namespaces/default/configmaps`` against labkit's apiserver, started in
  this process on each store, one client and then several.

The backends take turns in short rounds and each one's median round is reported, so a burst of
load from something else on the machine hits every backend alike instead of one.

The goal from the issue: sqlite >= 3x etcd in creates/s through the API. etcd 3.4 through its JSON
gateway does about 610 sequential puts/s on this machine (with the etcd3gw client).

    .venv/bin/python benchmarks/bench_store.py [--n 3000] [--rounds 5] [--threads 8] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labkit.controlplane.store import Store, open_store  # noqa: E402

POD = json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "namespace": "default",
                  "labels": {"app": "bench"}, "annotations": {"pad": "p" * 300}}, "spec": {"containers": [
                      {"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}}).encode()


@contextlib.contextmanager
def backends(tmp: Path, normal: bool) -> Iterator[dict[str, tuple[Store, str]]]:
    """name -> (open store, what it is); etcd is started here and stopped at the end."""
    out: dict[str, tuple[Store, str]] = {"memory": (open_store("memory"), "in-process")}
    out["sqlite"] = (open_store(f"sqlite:{tmp / 'full.db'}"), "WAL, synchronous=FULL (fsync per commit)")
    if normal:
        out["sqlite-normal"] = (open_store(f"sqlite:{tmp / 'normal.db'}?sync=normal"),
                                "WAL, synchronous=NORMAL (survives kill -9, not a power cut)")
    cluster = None
    if shutil.which("etcd"):
        from labkit.controlplane.store.etcd_server import EtcdCluster, etcd_version

        cluster = EtcdCluster(members=1)
        cluster.start()
        out["etcd"] = (open_store(cluster.url), f"etcd {etcd_version()}, 1 member, JSON gateway")
    else:
        print("etcd is not installed: the etcd row is skipped (apt-get install etcd-server)")
    try:
        yield out
    finally:
        for store, _ in out.values():
            store.close()
        if cluster is not None:
            cluster.stop()


def in_threads(fn: Callable[[int, int], None], total: int, threads: int) -> float:
    """Run fn(thread_index, count) on ``threads`` threads; creates per second overall."""
    per = max(total // threads, 1)
    workers = [threading.Thread(target=fn, args=(t, per)) for t in range(threads)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return per * threads / (time.perf_counter() - t0)


def store_creator(store: Store, tag: str) -> Callable[[int, int], None]:
    counter = iter(range(10**9))

    def work(t: int, count: int) -> None:
        base = next(counter)
        for i in range(count):
            # outside /registry/: the apiserver later started on this store must not see them
            store.create(f"/bench/pods/{tag}/{base}-t{t}-{i}", POD)
    return work


def api_creator(url: str, tag: str) -> Callable[[int, int], None]:
    parts = urlsplit(url)
    counter = iter(range(10**9))

    def work(t: int, count: int) -> None:
        base = next(counter)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        try:
            for i in range(count):
                body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                   "metadata": {"name": f"{tag}-{base}-{t}-{i}"}, "data": {"k": "v" * 300}})
                conn.request("POST", "/api/v1/namespaces/default/configmaps", body,
                             {"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 201:
                    raise RuntimeError(f"create through the API failed with HTTP {resp.status}")
        finally:
            conn.close()
    return work


def measure(creators: dict[str, Callable[[int, int], None]], n: int, rounds: int,
            columns: dict[str, int]) -> dict[str, dict[str, float]]:
    """Median creates/s per backend and column, backends taking turns round by round."""
    samples: dict[str, dict[str, list[float]]] = {b: {c: [] for c in columns} for b in creators}
    per_round = max(n // rounds, 1)
    for col, threads in columns.items():
        for fn in creators.values():  # warm up: connections, caches, first pages of the file
            in_threads(fn, min(per_round, 50), threads)
        for _ in range(rounds):
            for name, fn in creators.items():
                samples[name][col].append(in_threads(fn, per_round, threads))
    return {b: {c: statistics.median(v) for c, v in cols.items()} for b, cols in samples.items()}


def print_table(title: str, results: dict[str, dict[str, float]], details: dict[str, str]) -> None:
    cols = list(next(iter(results.values())).keys())
    print(f"\n{title}")
    print(f"{'store':<14}" + "".join(f"{c + ' /s':>16}" for c in cols) + "   backend")
    for name, row in results.items():
        print(f"{name:<14}" + "".join(f"{row[c]:>16,.0f}" for c in cols) + f"   {details[name]}")
    for a, b in (("sqlite", "etcd"), ("sqlite-normal", "etcd"), ("memory", "sqlite")):
        if a in results and b in results:
            print(f"{a} / {b}: " + ", ".join(f"{results[a][c] / results[b][c]:.1f}x ({c})" for c in cols))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3000, help="creates per backend and column")
    ap.add_argument("--rounds", type=int, default=5, help="turns the backends take")
    ap.add_argument("--threads", type=int, default=8, help="concurrent writers/clients in the second column")
    ap.add_argument("--no-normal", action="store_true", help="skip the sqlite sync=normal row")
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="labkit-bench-store-"))
    report: dict = {}
    columns_store = {"1 writer": 1, f"{args.threads} writers": args.threads}
    columns_api = {"1 client": 1, f"{args.threads} clients": args.threads}
    try:
        with backends(tmp, not args.no_normal) as stores:
            details = {name: d for name, (_, d) in stores.items()}
            creators = {name: store_creator(s, "store") for name, (s, _) in stores.items()}
            report["store"] = measure(creators, args.n, args.rounds, columns_store)
            print_table("Store level: store.create() per second (median of rounds)", report["store"], details)

            try:
                from labkit.controlplane.apiserver.server import APIServer
            except ImportError as exc:
                print(f"\nThrough the API: skipped (the apiserver cannot be imported: {exc})")
                APIServer = None  # noqa: N806
            if APIServer is not None:
                servers = {name: APIServer(s).start() for name, (s, _) in stores.items()}
                try:
                    creators = {name: api_creator(srv.url, "api") for name, srv in servers.items()}
                    report["api"] = measure(creators, args.n, args.rounds, columns_api)
                finally:
                    for srv in servers.values():
                        srv.stop()
                print_table("Through the API: POST configmaps per second (median of rounds)", report["api"],
                            details)
                if "etcd" in report["api"]:
                    print()
                    for name in ("sqlite", "sqlite-normal"):
                        if name in report["api"]:
                            ratio = report["api"][name]["1 client"] / report["api"]["etcd"]["1 client"]
                            print(f"goal sqlite >= 3x etcd through the API, one client, {name}: "
                                  f"{'met' if ratio >= 3 else 'NOT met'} ({ratio:.2f}x)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
