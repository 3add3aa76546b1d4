#!/usr/bin/env python
"""Backup and restore of 10,000 objects: time to back up, time until every pod runs again, and the RPO.

One run, in this process, on a sqlite store (WAL, fsync per commit):

1. an apiserver, ``--nodes`` hollow nodes and the scheduler; ``--pods`` pods scheduled and Running,
   and ConfigMaps up to ``--objects`` objects in all;
2. **backup**: a store snapshot (SQLite's online backup API) taken while a client keeps creating
   numbered ConfigMaps, and a Velero-style archive of the namespace;
3. **disaster**: the apiserver, the scheduler and the hollow kubelets stop; the store file is deleted;
4. **restore**: the snapshot becomes a new store, a fresh apiserver starts on it, the hollow
   kubelets start again (they register their Nodes again and run the pods bound to them); the
   clock stops when every pod that ran before is Running again in a new container;
5. **RPO**: numbered writes acknowledged before the snapshot started that the restore lacks (goal 0),
   and how many acknowledged after it were lost.

Goals (issue 14): backup <= 5 s, restore <= 60 s, RPO 0 for writes acknowledged before the snapshot.

    .venv/bin/python benchmarks/bench_backup.py [--objects 10000] [--pods 1000] [--nodes 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labkit.backup import backup_namespaces, restore_snapshot, snapshot_store  # noqa: E402
from labkit.backup.disaster import running_pods, wait_running_again  # noqa: E402
from labkit.backup.rpo import NumberedWriter, report  # noqa: E402
from labkit.client import Client  # noqa: E402
from labkit.client.blocking import BlockingClient  # noqa: E402
from labkit.client.kubeconfig import write_kubeconfig  # noqa: E402
from labkit.controlplane.apiserver import APIServer  # noqa: E402
from labkit.controlplane.scheduler.scheduler import Scheduler  # noqa: E402
from labkit.node.kubelet.hollow import HollowNodes  # noqa: E402

GOALS = {"backup": 5.0, "restore": 60.0}


async def fill(kc: str, pods: int, configmaps: int, concurrency: int = 64) -> None:
    sem = asyncio.Semaphore(concurrency)
    async with Client(kc, user_agent="bench-backup") as client:
        async def one(plural: str, body: dict) -> None:
            async with sem:
                await client.create(plural, body, "default")

        await asyncio.gather(*(one("pods", {"metadata": {"name": f"p-{i:05d}"}, "spec": {"containers": [
            {"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "10m"}}}]}}) for i in range(pods)))
        await asyncio.gather(*(one("configmaps", {"metadata": {"name": f"cm-{i:05d}"}, "data": {"k": "v" * 64}})
                               for i in range(configmaps)))


class Plane:
    """An apiserver on a store, hollow nodes and the scheduler, on a loop thread of their own."""

    def __init__(self, store_url: str, kc: str, nodes: int):
        self.api = APIServer(store_url, compact_interval=None).start()
        write_kubeconfig(kc, self.api.url)
        self.kc, self.nodes = kc, nodes
        self.loop = asyncio.new_event_loop()
        import threading

        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._run(self._start())

    def _run(self, coro):  # noqa: ANN001, ANN202
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def _start(self) -> None:
        self.client = Client(self.kc, user_agent="bench-backup-nodes")
        self.hollow = HollowNodes(self.client, self.nodes, cpu="32", pods="200", lease_interval=5)
        await self.hollow.start()
        self.sched = Scheduler(self.client, events=False)
        self.sched_task = asyncio.create_task(self.sched.run())

    async def _stop(self) -> None:
        self.sched_task.cancel()
        await asyncio.gather(self.sched_task, return_exceptions=True)
        await self.hollow.stop()
        await self.client.close()

    def stop(self) -> None:
        self._run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.api.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=10_000, help="objects in the store (pods + ConfigMaps)")
    ap.add_argument("--pods", type=int, default=1_000)
    ap.add_argument("--nodes", type=int, default=50)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    kc = str(tmp / "kubeconfig")
    live = tmp / "live.db"
    print(f"{a.objects} objects: {a.pods} pods on {a.nodes} hollow nodes + {a.objects - a.pods} ConfigMaps; "
          f"sqlite store, fsync per commit")
    t0 = time.perf_counter()
    plane = Plane(f"sqlite:{live}", kc, a.nodes)
    asyncio.run(fill(kc, a.pods, a.objects - a.pods))
    deadline = time.monotonic() + 120
    while len(running_pods(kc, ["default"])) < a.pods and time.monotonic() < deadline:
        time.sleep(0.2)
    before_pods = running_pods(kc, ["default"])
    print(f"  filled and {len(before_pods)} pods Running in {time.perf_counter() - t0:.1f} s")

    writer_client = BlockingClient(kc, user_agent="bench-backup-writer")
    writer = NumberedWriter(lambda n: writer_client.call("create", "configmaps", {"metadata": {"name": f"n-{n:05d}"}},
                                                         "default")).start(at_least=20)
    acked_before = writer.acked
    snap = snapshot_store(f"sqlite:{live}", tmp / "snapshot.db")
    acked_after = writer.acked
    time.sleep(0.5)
    acked_total = writer.stop()
    writer_client.close()
    archive = backup_namespaces(["default"], tmp / "default.tar.gz", kc)

    plane.stop()  # the disaster: control plane and kubelets gone ...
    for suffix in ("", "-wal", "-shm"):  # ... and the store with them
        Path(f"{live}{suffix}").unlink(missing_ok=True)

    since = time.monotonic()
    restored = restore_snapshot(tmp / "snapshot.db", tmp / "restored.db")
    plane = Plane(restored.url, kc, a.nodes)
    rto = wait_running_again(kc, before_pods, since, timeout=300)
    client = BlockingClient(kc)
    numbers = [int(o["metadata"]["name"][2:]) for o in client.call("list", "configmaps", "default")["items"]
               if o["metadata"]["name"].startswith("n-")]
    client.close()
    plane.stop()
    rpo = report(acked_before, acked_after, acked_total, numbers)

    rows = [("store snapshot (backup)", f"{snap.seconds:.2f} s", f"<= {GOALS['backup']:.0f} s",
             snap.seconds <= GOALS["backup"]),
            ("  snapshot size, keys", f"{snap.size / 1e6:.1f} MB, {snap.keys}", "", None),
            ("namespace archive (Velero-style)", f"{archive.seconds:.2f} s", "(no goal)", None),
            ("  archive objects", f"{archive.total}", "", None),
            ("restore until every pod Running", f"{rto:.2f} s", f"<= {GOALS['restore']:.0f} s",
             rto <= GOALS["restore"]),
            ("RPO: acked before snapshot, lost", f"{rpo.lost_before} of {rpo.acked_before}", "0",
             rpo.lost_before == 0 and rpo.contiguous),
            ("RPO: acked after snapshot, lost", f"{rpo.lost} of {rpo.acked_total}", "(expected > 0)", None)]
    print(f"\n{'measure':36} {'this run':>16} {'goal':>10}  met")
    for name, value, goal, ok in rows:
        print(f"{name:36} {value:>16} {goal:>10}  {'' if ok is None else ('yes' if ok else 'NO')}")
    print(f"\nmachine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; files in {tmp}")
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
