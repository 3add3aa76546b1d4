#!/usr/bin/env python
"""Creates per second for each store - memory, sqlite and real etcd - measured side by side in one run.

Two levels:

* **store**: ``store.create()`` in a loop, one writer and then several concurrent writers (the
  concurrent case is where sqlite's group commit shares one fsync between many writes);
* **API**: ``POST /api/v1/namespaces/default/configmaps`` against labkit's apiserver, started in
  this process on each store, one client and then several - with the clients as threads of this
  process, and again with the clients in a process of their own (as kubectl and every controller
  are). In-process clients share the apiserver's GIL, so each request also pays for handing
  the GIL back and forth; a client process does not. Both are printed; neither is "the" number.

A single sequential client hides group commit (there is never a second write to share a commit
with), so every shape is measured with 1 and with ``--threads`` clients in flight.

The backends take turns in short rounds and each one's median round is reported, so a burst of
load from something else on the machine hits every backend alike instead of one.

The goal from the issue: sqlite >= 3x etcd in creates/s through the API. etcd 3.4 through its JSON
gateway does about 610 sequential puts/s on this machine (with the etcd3gw client).

    .venv/bin/python benchmarks/bench_store.py [--n 3000] [--rounds 9] [--threads 8] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
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


Runner = Callable[[int, int], float]  # (creates, clients in flight) -> creates per second


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


def store_runner(store: Store, tag: str) -> Runner:
    counter = iter(range(10**9))

    def work(t: int, count: int) -> None:
        base = next(counter)
        for i in range(count):
            # outside /registry/: the apiserver later started on this store must not see them
            store.create(f"/bench/pods/{tag}/{base}-t{t}-{i}", POD)
    return lambda total, threads: in_threads(work, total, threads)


# The client loop: the same code in this process and in the client process (which imports
# nothing of labkit, so it starts in a few milliseconds and adds nothing to the server's process).
CLIENT = '''
import http.client, json, sys, threading, time

def post_configmaps(host, port, prefix, count):
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        for i in range(count):
            body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": f"{prefix}-{i}"}, "data": {"k": "v" * 300}})
            conn.request("POST", "/api/v1/namespaces/default/configmaps", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 201:
                raise RuntimeError(f"create through the API failed with HTTP {resp.status}")
    finally:
        conn.close()

def in_threads(host, port, prefix, per, threads):
    errors = []
    def run(t):
        try:
            post_configmaps(host, port, f"{prefix}-{t}", per)
        except Exception as exc:
            errors.append(exc)
    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    return per * threads / (time.perf_counter() - t0)

if __name__ == "__main__":
    for line in sys.stdin:  # "host port prefix per threads" -> creates/s, until stdin closes
        host, port, prefix, per, threads = line.split()
        print(in_threads(host, int(port), prefix, int(per), int(threads)), flush=True)
'''
_client: dict = {}
exec(compile(CLIENT, "bench-client", "exec"), _client)


class ClientProcess:
    """The client loop in a process of its own, driven over stdin/stdout one round at a time."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", CLIENT], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def run(self, host: str, port: int, prefix: str, per: int, threads: int) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{host} {port} {prefix} {per} {threads}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the client process failed (its error is above)")
        return float(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def api_runner(url: str, tag: str, client: ClientProcess | None) -> Runner:
    """POST configmaps to ``url``: from threads of this process, or from ``client``'s process."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    counter = iter(range(10**9))

    def run(total: int, threads: int) -> float:
        prefix = f"{tag}-{next(counter)}"
        per = max(total // threads, 1)
        if client is None:
            return _client["in_threads"](host, port, prefix, per, threads)
        return client.run(host, port, prefix, per, threads)
    return run


def measure(runners: dict[str, dict[str, Runner]], n: int, rounds: int,
            columns: dict[str, tuple[str, int]]) -> dict[str, dict[str, float]]:
    """Median creates/s per backend and column, backends taking turns round by round.

    ``runners``: backend -> runner kind -> runner; ``columns``: column -> (runner kind, clients).
    """
    samples: dict[str, dict[str, list[float]]] = {b: {c: [] for c in columns} for b in runners}
    per_round = max(n // rounds, 1)
    for col, (kind, threads) in columns.items():
        for by_kind in runners.values():  # warm up: connections, caches, first pages of the file
            by_kind[kind](min(per_round, 50), threads)
        for _ in range(rounds):
            for name, by_kind in runners.items():
                samples[name][col].append(by_kind[kind](per_round, threads))
    return {b: {c: statistics.median(v) for c, v in cols.items()} for b, cols in samples.items()}


def print_table(title: str, results: dict[str, dict[str, float]], details: dict[str, str]) -> None:
    cols = list(next(iter(results.values())).keys())
    width = max(16, *(len(c) + 5 for c in cols))
    print(f"\n{title}")
    print(f"{'store':<14}" + "".join(f"{c + ' /s':>{width}}" for c in cols) + "   backend")
    for name, row in results.items():
        print(f"{name:<14}" + "".join(f"{row[c]:>{width},.0f}" for c in cols) + f"   {details[name]}")
    for a, b in (("sqlite", "etcd"), ("sqlite-normal", "etcd"), ("memory", "sqlite")):
        if a in results and b in results:
            print(f"{a} / {b}: " + ", ".join(f"{results[a][c] / results[b][c]:.2f}x ({c})" for c in cols))


def load() -> str:
    """The load averages: timings on a shared machine mean little without them."""
    try:
        return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3]) + \
            f" on {os.cpu_count()} CPUs"
    except OSError:
        return "load average unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3000, help="creates per backend and column")
    ap.add_argument("--rounds", type=int, default=9,
                    help="turns the backends take (short turns: a burst of load from elsewhere spoils fewer)")
    ap.add_argument("--threads", type=int, default=8, help="concurrent writers/clients in the second column")
    ap.add_argument("--no-normal", action="store_true", help="skip the sqlite sync=normal row")
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="labkit-bench-store-"))
    report: dict = {"load_before": load()}
    print(f"{load()} before the run")
    n_clients = f"{args.threads} clients"
    columns_store = {"1 writer": ("threads", 1), f"{args.threads} writers": ("threads", args.threads)}
    columns_api = {"1 client": ("threads", 1), n_clients: ("threads", args.threads),
                   "1 client, own process": ("process", 1), f"{n_clients}, own process": ("process", args.threads)}
    try:
        with backends(tmp, not args.no_normal) as stores:
            details = {name: d for name, (_, d) in stores.items()}
            runners = {name: {"threads": store_runner(s, "store")} for name, (s, _) in stores.items()}
            report["store"] = measure(runners, args.n, args.rounds, columns_store)
            print_table("Store level: store.create() per second (median of rounds)", report["store"], details)

            try:
                from labkit.controlplane.apiserver.server import APIServer
            except ImportError as exc:
                print(f"\nThrough the API: skipped (the apiserver cannot be imported: {exc})")
                APIServer = None  # noqa: N806
            if APIServer is not None:
                servers = {name: APIServer(s).start() for name, (s, _) in stores.items()}
                client = ClientProcess()
                try:
                    runners = {name: {"threads": api_runner(srv.url, "api", None),
                                      "process": api_runner(srv.url, "apip", client)}
                               for name, srv in servers.items()}
                    report["api"] = measure(runners, args.n, args.rounds, columns_api)
                finally:
                    client.close()
                    for srv in servers.values():
                        srv.stop()
                print_table("Through the API: POST configmaps per second (median of rounds)", report["api"],
                            details)
                if "etcd" in report["api"]:
                    print()
                    for name in ("sqlite", "sqlite-normal"):
                        if name in report["api"]:
                            ratios = {c: report["api"][name][c] / report["api"]["etcd"][c] for c in columns_api}
                            print(f"goal {name} >= 3x etcd through the API: " + ", ".join(
                                f"{c} {r:.2f}x {'met' if r >= 3 else 'NOT met'}" for c, r in ratios.items()))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report["load_after"] = load()
    print(f"\n{load()} after the run")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
