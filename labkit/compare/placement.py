"""One workload, three schedulers: Mesos offers with DRF, kube-style, Borg-style best fit.

Two tenants submit tasks of mixed CPU/memory shapes to one cell of identical machines, more than
the cell holds. Each scheduler places what it can, and :func:`compare` reports, per scheduler:
the seconds it took, the tasks placed per tenant, each tenant's **dominant share** (its largest
fraction of any resource of the cell, as DRF defines it) and the **stranded** resources: what is
left free on machines where no task shape of the workload fits any more (the Borg paper's
cell-compaction way of asking how much a policy wastes).

* ``offers+DRF``: :class:`~labkit.mesos.allocator.DRFAllocator` offers whole machines to the
  tenant with the lowest dominant share; each tenant is a framework that launches the tasks of its
  queue that fit the offer and gives the rest back with Mesos' default 5 s refuse filter. Rounds
  run on a virtual clock, one per second (``--allocation_interval``'s default).
* ``kube-style``: labkit's scheduling framework (the plug-ins kube-scheduler has by default:
  LeastAllocated and BalancedAllocation scores), pods in arrival order.
* ``Borg-style best fit``: the same framework with NodeResourcesFit's ``MostAllocated`` strategy.

Everything is in-process and deterministic for a seed, so a lab can run it small and
``benchmarks/bench_schedulers.py`` at 2,000 tasks.
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from labkit.controlplane.scheduler.framework import Framework
from labkit.controlplane.scheduler.nodetable import NodeTable
from labkit.controlplane.scheduler.plugins import scores_for
from labkit.mesos.allocator import DRFAllocator

# (CPUs, GiB): tenant A runs memory-heavy work (caches, JVMs), tenant B CPU-heavy work (encoders)
SHAPES: dict[str, list[tuple[float, float]]] = {
    "A": [(1, 4), (2, 8), (0.5, 3), (1, 12)],
    "B": [(3, 1), (4, 2), (2, 1), (6, 4)],
}
SCHEDULERS = ("offers+DRF", "kube-style", "Borg-style best fit")
GiB_MB = 1024.0
REFUSE_SECONDS = 5.0


@dataclass
class Task:
    tenant: str
    cpus: float
    mem: float  # GiB


@dataclass
class Placement:
    scheduler: str
    seconds: float
    placed: dict[str, int]
    submitted: dict[str, int]
    dominant_share: dict[str, float]
    stranded_cpus: float
    stranded_gib: float
    cell_cpus: float
    cell_gib: float
    rounds: int = 0  # offer rounds (offers+DRF only)
    used: list[tuple[float, float]] = field(default_factory=list, repr=False)  # per machine (cpus, GiB)

    @property
    def stranded_pct(self) -> tuple[float, float]:
        return 100 * self.stranded_cpus / self.cell_cpus, 100 * self.stranded_gib / self.cell_gib


def workload(tasks: int = 2000, seed: int = 7) -> list[Task]:
    """``tasks`` tasks, half per tenant, in a random arrival order."""
    rng = random.Random(seed)
    out = [Task(tenant, *rng.choice(SHAPES[tenant])) for tenant in ("A", "B") for _ in range(tasks // 2)]
    rng.shuffle(out)
    return out


def _summary(name: str, seconds: float, tasks: list[Task], placed: list[Task], used: list[tuple[float, float]],
             machine: tuple[float, float], rounds: int = 0) -> Placement:
    cell_cpus, cell_gib = machine[0] * len(used), machine[1] * len(used)
    shapes = {(t.cpus, t.mem) for t in tasks}
    stranded_c = stranded_m = 0.0
    for c, m in used:
        free_c, free_m = machine[0] - c, machine[1] - m
        if not any(sc <= free_c + 1e-9 and sm <= free_m + 1e-9 for sc, sm in shapes):
            stranded_c += free_c
            stranded_m += free_m
    share = {}
    for tenant in ("A", "B"):
        c = sum(t.cpus for t in placed if t.tenant == tenant)
        m = sum(t.mem for t in placed if t.tenant == tenant)
        share[tenant] = max(c / cell_cpus, m / cell_gib)
    return Placement(name, seconds, {k: sum(t.tenant == k for t in placed) for k in ("A", "B")},
                     {k: sum(t.tenant == k for t in tasks) for k in ("A", "B")}, share, stranded_c, stranded_m,
                     cell_cpus, cell_gib, rounds, used)


def by_offers(tasks: list[Task], machines: int, machine: tuple[float, float] = (16, 64), seed: int = 1,
              per_offer: int = 0, refuse_seconds: float = REFUSE_SECONDS, max_rounds: int = 1000) -> Placement:
    """Two frameworks on a DRF allocator; each launches its queue's tasks that fit an offer (at
    most ``per_offer`` of them, 0: all that fit) and gives back the rest with a ``refuse_seconds``
    filter (Mesos' default 5 s)."""
    t0 = time.perf_counter()
    alloc = DRFAllocator(seed=seed)
    for i in range(machines):
        alloc.add_agent(f"m{i:04d}", {"cpus": float(machine[0]), "mem": machine[1] * GiB_MB})
    queues = {tenant: deque(t for t in tasks if t.tenant == tenant) for tenant in ("A", "B")}
    for tenant in queues:
        alloc.add_framework(tenant)
    used = {f"m{i:04d}": [0.0, 0.0] for i in range(machines)}
    placed: list[Task] = []
    idle = rounds = 0
    now = 0.0
    while rounds < max_rounds and any(queues.values()) and idle <= refuse_seconds + 1:
        rounds += 1
        launched = 0
        for fid, aid, offer in alloc.allocate(now):
            cpus, mem = offer.get("cpus", 0.0), offer.get("mem", 0.0) / GiB_MB
            took_c = took_m = 0.0
            queue, keep, mine = queues[fid], deque(), 0
            while queue and not (per_offer and mine >= per_offer):
                t = queue.popleft()
                if t.cpus <= cpus - took_c + 1e-9 and t.mem <= mem - took_m + 1e-9:
                    took_c += t.cpus
                    took_m += t.mem
                    placed.append(t)
                    mine += 1
                else:
                    keep.append(t)
            keep.extend(queue)
            launched += mine
            queues[fid] = keep
            used[aid][0] += took_c
            used[aid][1] += took_m
            left = {"cpus": round(cpus - took_c, 3), "mem": round((mem - took_m) * GiB_MB, 3)}
            if any(v > 0 for v in left.values()):  # the unused part goes back, filtered for this framework
                alloc.recover(fid, aid, left, refuse_seconds, now)
            # what it launched stays allocated to it: that is its dominant share from now on
        idle = 0 if launched else idle + 1
        now += 1.0
    name = "offers+DRF" + (f", {per_offer}/offer" if per_offer else "") + (
        f", refuse {refuse_seconds:g}s" if refuse_seconds != REFUSE_SECONDS else "")
    return _summary(name, time.perf_counter() - t0, tasks, placed, [tuple(u) for u in used.values()],
                    machine, rounds)


def _pod(i: int, t: Task) -> dict:
    return {"metadata": {"name": f"t{i}", "namespace": t.tenant.lower()},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {
                "cpu": f"{int(t.cpus * 1000)}m", "memory": f"{int(t.mem * 1024)}Mi"}}}]}}


def by_kube_framework(tasks: list[Task], machines: int, machine: tuple[float, float] = (16, 64),
                      strategy: str = "LeastAllocated") -> Placement:
    """labkit's scheduling framework, one pod at a time in arrival order, as kube-scheduler's queue."""
    t0 = time.perf_counter()
    table = NodeTable()
    for i in range(machines):
        table.upsert_node({"metadata": {"name": f"m{i:04d}", "labels": {}}, "status": {"allocatable": {
            "cpu": str(machine[0]), "memory": f"{int(machine[1])}Gi", "pods": "1000"}}})
    fw = Framework(scores=scores_for(strategy))
    placed = []
    for i, t in enumerate(tasks):
        pod = _pod(i, t)
        d = fw.schedule_one(table, pod)
        if d.node:
            table.add_pod(f"{t.tenant.lower()}/t{i}", d.node, pod)
            placed.append(t)
    seconds = time.perf_counter() - t0
    slots, _ = table.ordered()
    cpu_used = table.req[table.rows["cpu"], slots] / 1000.0
    mem_used = table.req[table.rows["memory"], slots] / 2**30
    name = "kube-style" if strategy == "LeastAllocated" else "Borg-style best fit"
    return _summary(name, seconds, tasks, placed, list(zip(cpu_used.tolist(), mem_used.tolist(), strict=True)),
                    machine)


def compare(tasks: int = 2000, machines: int = 100, machine: tuple[float, float] = (16, 64),
            seed: int = 7) -> list[Placement]:
    """The same workload through each of :data:`SCHEDULERS`, offers twice: frameworks that pack
    each offer (5 s filters, Mesos' defaults), and frameworks that take one task per offer and
    filter nothing (the DRF paper's model, where the allocator's order decides every task)."""
    work = workload(tasks, seed)
    return [by_offers(work, machines, machine, seed=seed),
            by_offers(work, machines, machine, seed=seed, per_offer=1, refuse_seconds=0),
            by_kube_framework(work, machines, machine),
            by_kube_framework(work, machines, machine, "MostAllocated")]


def table(results: list[Placement]) -> str:
    """The comparison as aligned text, one scheduler a row."""
    head = (f"{'scheduler':<32}{'seconds':>8}{'placed A':>9}{'placed B':>9}{'share A':>8}{'share B':>8}"
            f"{'stranded CPUs':>14}{'stranded GiB':>13}")
    rows = [head]
    for r in results:
        sc, sm = r.stranded_pct
        rows.append(f"{r.scheduler:<32}{r.seconds:8.2f}{r.placed['A']:>9}{r.placed['B']:>9}"
                    f"{r.dominant_share['A']:8.2f}{r.dominant_share['B']:8.2f}"
                    f"{r.stranded_cpus:>7.1f} ({sc:3.0f}%){r.stranded_gib:>6.0f} ({sm:3.0f}%)")
    return "\n".join(rows)


def spread(values: list[float]) -> float:
    """Max minus min: how far apart the tenants' dominant shares ended up."""
    a = np.array(values, dtype=float)
    return float(a.max() - a.min()) if len(a) else 0.0
