"""One 2,000-task workload, three schedulers: Mesos offers with DRF, kube-style, Borg-style best fit.

Two tenants (A memory-heavy, B CPU-heavy; mixed shapes, see ``labkit.compare.placement.SHAPES``)
submit 1,000 tasks each to a cell of identical machines that holds less than that. Printed per
scheduler: the seconds it took to place the workload, the tasks placed per tenant, each tenant's
dominant share of the cell, and the resources stranded (free on machines where no task shape of
the workload fits any more, the Borg paper's cell-compaction measure). Offers run twice: with
frameworks that pack each offer under Mesos' default 5 s filters, and with frameworks that take one
task per offer (the DRF paper's model).

    .venv/bin/python benchmarks/bench_schedulers.py [--tasks 2000] [--machines 100] [--cpus 16] [--gib 64]
"""

from __future__ import annotations

import argparse
import os

from labkit.compare import placement


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--machines", type=int, default=100)
    ap.add_argument("--cpus", type=float, default=16)
    ap.add_argument("--gib", type=float, default=64)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    work = placement.workload(args.tasks, args.seed)
    demand = {t: (sum(x.cpus for x in work if x.tenant == t), sum(x.mem for x in work if x.tenant == t))
              for t in ("A", "B")}
    print(f"load average {os.getloadavg()[0]:.1f}; {args.tasks} tasks on {args.machines} machines of "
          f"{args.cpus:g} CPUs, {args.gib:g} GiB (cell {args.machines * args.cpus:g} CPUs, "
          f"{args.machines * args.gib:g} GiB)")
    for t, (c, m) in demand.items():
        print(f"  tenant {t} asks for {c:g} CPUs and {m:g} GiB in {sum(x.tenant == t for x in work)} tasks "
              f"of shapes {placement.SHAPES[t]}")
    results = placement.compare(args.tasks, args.machines, (args.cpus, args.gib), args.seed)
    print(placement.table(results))
    for r in results:
        extra = f", {r.rounds} offer rounds of 1 s" if r.rounds else ""
        print(f"{r.scheduler}: {sum(r.placed.values())} of {args.tasks} placed in {r.seconds * 1000:.0f} ms"
              f"{extra}; dominant shares {placement.spread(list(r.dominant_share.values())):.2f} apart")


if __name__ == "__main__":
    main()
