"""200 clients hammer the apiserver, with and without a max-requests-inflight limit, side by side.

The apiserver runs as its own process (sqlite store, as ``labkit cluster up`` runs it); the
clients (``labkit.controlplane.apiserver.overload.burst``) list a namespace's ConfigMaps without
backing off. Without a limit every request waits its turn, however long the queue; with one,
the excess gets 429 and a Retry-After at once. Hostile clients ask again at once; polite ones
("+ Retry-After") wait as told, as client-go does. The runs take turns, round by round, so a
busy moment on the machine hits all alike.

    .venv/bin/python benchmarks/bench_overload.py [--clients 200] [--seconds 10] [--limit 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import requests

from labkit.controlplane.apiserver.overload import BurstResult, burst

PATH = "/api/v1/namespaces/default/configmaps"


def start_apiserver(store: str, limit: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "labkit.controlplane.apiserver", "--port", "0", "--store", store,
                             "--compact-interval", "0", "--max-requests-inflight", str(limit)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if "ready on" not in line:
        proc.kill()
        raise SystemExit(f"the apiserver did not start: {line!r}")
    return proc, line.split("ready on ", 1)[1].split()[0]


def one_run(store: str, limit: int, clients: int, seconds: float, polite: bool) -> BurstResult:
    proc, url = start_apiserver(store, limit)
    try:
        for i in range(20):  # a small list: each request does real work, but not much
            requests.post(url + PATH, json={"metadata": {"name": f"cm-{i}"}, "data": {"k": "v" * 100}}, timeout=10)
        result = burst(url, clients=clients, seconds=seconds, path=PATH, honor_retry_after=polite)
        assert requests.get(url + "/readyz", timeout=10).status_code == 200, "the server stopped serving"
        return result
    finally:
        proc.terminate()
        proc.wait(10)


def merged(results: list[BurstResult]) -> BurstResult:
    out = BurstResult(clients=results[0].clients, seconds=sum(r.seconds for r in results))
    for r in results:
        out.codes.update(r.codes)
        out.failures += r.failures
        out.no_retry_after += r.no_retry_after
        for code, values in r.latencies.items():
            out.latencies.setdefault(code, []).extend(values)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--limit", type=int, default=20, help="--max-requests-inflight for the limited runs")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(f"load average at the start: {os.getloadavg()[0]:.1f}; {args.clients} clients, {args.seconds:.0f} s "
          f"per run, {args.rounds} rounds, limit {args.limit}")
    configs = (("no limit", 0, False), (f"limit {args.limit}", args.limit, False),
               ("+ Retry-After", args.limit, True))
    runs: dict[str, list[BurstResult]] = {name: [] for name, _, _ in configs}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for i, (name, limit, polite) in enumerate(configs):
                runs[name].append(one_run(f"sqlite:{tmp}/{r}-{i}.db", limit, args.clients, args.seconds, polite))
    rows = {name: merged(results) for name, results in runs.items()}
    print(f"{'':28}" + "".join(f"{name:>16}" for name in rows))

    def row(label: str, fn) -> None:  # noqa: ANN001
        print(f"{label:28}" + "".join(f"{fn(r):>16}" for r in rows.values()))
    row("requests answered", lambda r: sum(r.codes.values()))
    row("200 OK", lambda r: r.codes.get(200, 0))
    row("429 Too Many Requests", lambda r: r.codes.get(429, 0))
    row("429 without Retry-After", lambda r: r.no_retry_after)
    row("no answer (errors)", lambda r: r.failures)
    row("200s per second", lambda r: f"{r.throughput():.0f}")
    row("all answers per second", lambda r: f"{sum(r.codes.values()) / r.seconds:.0f}")
    row("p50 of 200s (ms)", lambda r: f"{r.percentile(50) * 1000:.0f}")
    row("p99 of 200s (ms)", lambda r: f"{r.percentile(99) * 1000:.0f}")
    row("p99 of 429s (ms)", lambda r: f"{r.percentile(99, 429) * 1000:.0f}" if r.codes.get(429) else "-")
    row("p99 of all answers (ms)", lambda r: f"{r.percentile(99, None) * 1000:.0f}")
    off = rows["no limit"]
    for name, on in list(rows.items())[1:]:
        print(f"ratios {name} / no limit: 200s per second {on.throughput() / off.throughput():.2f}x, "
              f"p99 of 200s {on.percentile(99) / off.percentile(99):.2f}x, "
              f"p99 of all answers {on.percentile(99, None) / off.percentile(99, None):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
