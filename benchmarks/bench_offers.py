"""Offer-cycle latency: 1,000 agents, 10 frameworks, DRF allocation rounds. Goal: ≤ 50 ms a round.

Two figures, side by side in one run:

* the allocator alone (``DRFAllocator.allocate``): every agent's free resources offered to the
  framework with the lowest dominant share that has no filter for it, then all declined again;
* the whole cycle through a real master over HTTP: the master's round (allocate, build the
  OFFERS events) and the time until the last of 10 subscribed schedulers (one child process,
  so they do not share the master's GIL) has read its OFFERS from its RecordIO stream. Each scheduler declines every offer at once (refuse_seconds 0), so
  each round offers all 1,000 agents again. Agents use the hollow runtime: nothing is launched.

    .venv/bin/python benchmarks/bench_offers.py [--agents 1000] [--frameworks 10] [--rounds 20]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from labkit.mesos.allocator import DRFAllocator
from labkit.mesos.client import SchedulerClient
from labkit.mesos.master import GC_THRESHOLDS, Master

GOAL_MS = 50.0


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def allocator_only(agents: int, frameworks: int, rounds: int) -> tuple[list[float], list[float]]:
    alloc = DRFAllocator(seed=1)
    for i in range(agents):
        alloc.add_agent(f"a{i}", {"cpus": 8.0 + i % 4, "mem": 32768.0, "disk": 100000.0})
    for f in range(frameworks):
        alloc.add_framework(f"f{f}")
    times, cpu = [], []
    for r in range(rounds):
        t0, c0 = time.perf_counter(), time.thread_time()
        offers = alloc.allocate(now=float(r))
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
        assert len(offers) == agents
        for fid, aid, amounts in offers:
            alloc.recover(fid, aid, amounts)
    return times, cpu


def schedulers(url: str, frameworks: int, out: str) -> None:
    """Child mode: ``frameworks`` schedulers that decline every offer at once and log when each
    OFFERS event arrived (CLOCK_MONOTONIC is one clock for every process on Linux)."""
    lock = threading.Lock()
    with open(out, "w") as log:
        def loop(c: SchedulerClient, f: int) -> None:
            while (ev := c.events.get()) is not None:
                if ev["type"] == "OFFERS":
                    t = time.monotonic()
                    with lock:
                        log.write(f"{f} {t}\n")
                        log.flush()
                    c.decline([o["id"]["value"] for o in ev["offers"]["offers"]], refuse_seconds=0)

        threads = []
        for f in range(frameworks):
            c = SchedulerClient(url)
            c.subscribe({"user": "bench", "name": f"fw-{f}"})
            threads.append(threading.Thread(target=loop, args=(c, f), daemon=True))
            threads[-1].start()
        print("subscribed", flush=True)
        sys.stdin.read()  # until the parent closes our stdin


def through_master(agents: int, frameworks: int, rounds: int) -> tuple[list[float], list[float], list[float]]:
    """The master here; the 10 schedulers in one child process, so they do not share its GIL."""
    master = Master(runtime="hollow", allocation_interval=0.25, heartbeat_interval=60, seed=1).start()
    with tempfile.NamedTemporaryFile("r", suffix=".log") as log:
        child = subprocess.Popen([sys.executable, __file__, "--child", master.url, "--frameworks", str(frameworks),
                                  "--log", log.name], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "subscribed"
            for i in range(agents):
                master.add_agent(f"agent-{i}", cpus=8 + i % 4, mem=32768)
            deadline = time.monotonic() + 120
            while len([r for r in master.rounds if r[3] == agents]) < rounds + 1 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            child.communicate("", timeout=30)
            master.stop()
        received: list[list[float]] = [[] for _ in range(frameworks)]
        for line in log.read().splitlines():
            f, t = line.split()
            received[int(f)].append(float(t))
    full = [r for r in master.rounds if r[3] == agents][1:rounds + 1]  # the first one races the agents' adds
    master_ms = [r[1] * 1000 for r in full]
    master_cpu = [r[2] * 1000 for r in full]
    cycle_ms = []
    for start, *_ in full:
        first = [min((t for t in mine if t >= start), default=None) for mine in received]
        if all(t is not None for t in first):
            cycle_ms.append((max(first) - start) * 1000)  # type: ignore[type-var]
    return master_ms, master_cpu, cycle_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--frameworks", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    ap.add_argument("--log", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return schedulers(args.child, args.frameworks, args.log)
    print(f"load average {os.getloadavg()[0]:.1f}; {args.agents} agents, {args.frameworks} frameworks, "
          f"{args.rounds} rounds; goal ≤ {GOAL_MS:.0f} ms per allocation round")
    alloc, alloc_cpu = allocator_only(args.agents, args.frameworks, args.rounds)
    master_ms, master_cpu, cycle_ms = through_master(args.agents, args.frameworks, args.rounds)
    default_gc = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)  # as `python -m labkit.mesos` runs the master
    tuned_ms, tuned_cpu, tuned_cycle = through_master(args.agents, args.frameworks, args.rounds)
    gc.set_threshold(*default_gc)
    print(f"{'what':62} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}")
    rows = (("allocator round alone (DRFAllocator.allocate), wall", alloc),
            ("  the same, CPU time of its thread", alloc_cpu),
            (f"master round: allocate + build OFFERS, wall (gc {default_gc[0]})", master_ms),
            ("  the same, CPU time of the master's thread", master_cpu),
            ("  offer cycle: round start → last scheduler has its OFFERS", cycle_ms),
            (f"master round, wall (gc threshold {GC_THRESHOLDS[0]}, python -m labkit.mesos)", tuned_ms),
            ("  the same, CPU time of the master's thread", tuned_cpu),
            ("  offer cycle: round start → last scheduler has its OFFERS", tuned_cycle))
    for name, vals in rows:
        if vals:
            print(f"{name:62} {statistics.median(vals):10.1f} {pct(vals, 0.95):8.1f} {max(vals):8.1f}")
        else:
            print(f"{name:62} {'(no complete rounds)':>28}")
    for name, vals in (("default gc, wall", master_ms), ("tuned gc, wall", tuned_ms), ("tuned gc, CPU", tuned_cpu)):
        for what, v in (("median", statistics.median(vals) if vals else None), ("p95", pct(vals, 0.95) if vals else None)):
            verdict = "meets" if v is not None and v <= GOAL_MS else "misses"
            print(f"the master's allocation round ({name}, {what}) {verdict} the {GOAL_MS:.0f} ms goal")


if __name__ == "__main__":
    main()
