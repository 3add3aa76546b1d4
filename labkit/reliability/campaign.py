"""One recorded run: concurrent clients on one store through the apiserver while faults are injected,
then every check on what they saw.

    report = run("sqlite", seconds=8, faults=["apiserver-kill", "apiserver-pause"])
    print(report.summary())          # operations checked, violations, acknowledged writes lost

The store is ``memory``, ``sqlite`` or ``etcd`` (a three-member etcd cluster started here). The
memory store lives inside the apiserver process, so ``apiserver-kill`` wipes it: that run is
*expected* to fail its checks, and shows the checker catching lost writes.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from labkit.controlplane.store.etcd_server import EtcdCluster
from labkit.reliability.clients import ObjectClient, Refused, Unknown, configmap, request, run_client
from labkit.reliability.faults import FAULTS, ApiServerProcess, Injector
from labkit.reliability.history import History
from labkit.reliability.linearizability import Result, check_history, check_revision_order
from labkit.reliability.watchcheck import WatchRecorder, WatchReport, check_watch

STORES = ("memory", "sqlite", "etcd")


@dataclass
class Report:
    store: str
    faults: list[str]
    history: History
    linearizability: Result
    revision_order: list = field(default_factory=list)
    watch: WatchReport | None = None
    timeline: list[tuple[float, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def violations(self) -> int:
        return len(self.linearizability.violations) + len(self.revision_order)

    @property
    def lost(self) -> int:
        """Acknowledged writes that the watch or the final read of every object did not show."""
        return (len(self.watch.missing) if self.watch is not None else 0) + len(final_reads_lost(self.history))

    @property
    def ok(self) -> bool:
        return self.violations == 0 and self.lost == 0 and (self.watch is None or self.watch.ok) \
            and not any(k.unknown for k in self.linearizability.keys)

    def summary(self) -> str:
        c = self.history.counts()
        return (f"{self.store}: {len(self.history.ops)} operations ({c['ok']} ok, {c['fail']} failed, "
                f"{c['info']} indeterminate) under {', '.join(self.faults) or 'no faults'}: "
                f"{self.violations} violations, {self.lost} acknowledged writes lost; "
                + (self.watch.explain() if self.watch else "no watch"))

    def explain(self) -> str:
        lines = [self.summary()]
        if not self.linearizability.ok:
            lines.append(self.linearizability.explain())
        lines += [f"revision order: {a.describe()} returned before {b.describe()} was called"
                  for a, b in self.revision_order[:5]]
        lines += [f"lost: {why}" for why in final_reads_lost(self.history)[:5]]
        lines += [f"  {t - self.timeline[0][0]:6.2f}s {what}" for t, what in self.timeline] if self.timeline else []
        return "\n".join(lines)


def final_reads_lost(history: History) -> list[str]:
    """Objects whose final read (after every client stopped and every fault healed) does not show
    the last acknowledged write, when no later or indeterminate operation could explain it."""
    out = []
    final_process = max((op.process for op in history.ops), default=0)
    for key, ops in history.by_key().items():
        finals = [op for op in ops if op.process == final_process and op.kind == "get" and op.status == "ok"]
        writes = [op for op in ops if op.is_write and op.process != final_process]
        if not finals or any(op.status == "info" for op in writes):
            continue
        done = [op for op in writes if op.status == "ok"]
        if not done:
            continue
        last = max(done, key=lambda op: op.ret)
        if last.kind == "delete":
            continue
        seen = finals[-1]
        if (seen.out_value, seen.out_rv) != (last.value, last.out_rv):
            out.append(f"{key}: {last.describe()} was acknowledged last, the final read shows "
                       f"{seen.out_value}@{seen.out_rv}")
    return out


def _wait_for_write(base: str, path: str, body: dict, timeout: float) -> int:
    """Create ``body`` (retrying while the server is away) and return its resourceVersion."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            reply = request(base, "POST", path, body, timeout=3)
            if reply.code in (200, 201):
                return int(reply.body["metadata"]["resourceVersion"])
            if reply.code == 409:  # an earlier try did land
                reply = request(base, "GET", f"{path}/{body['metadata']['name']}", timeout=3)
                return int(reply.body["metadata"]["resourceVersion"])
        except (Refused, Unknown):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"could not write {path} within {timeout:.0f}s")
        time.sleep(0.1)


def run(store: str, seconds: float = 8.0, faults: list[str] | tuple[str, ...] = (), clients: int = 5,
        keys: int = 3, seed: int = 1, timeout: float = 1.5, workdir: str | Path | None = None) -> Report:
    """Record a history on ``store`` with ``faults`` spread over ``seconds``, and check it."""
    if store not in STORES:
        raise ValueError(f"unknown store {store!r}: use one of {', '.join(STORES)}")
    for f in faults:
        if f not in FAULTS:
            raise ValueError(f"unknown fault {f!r}: the faults are {', '.join(FAULTS)}")
        if f.startswith("etcd-") and store != "etcd":
            raise ValueError(f"{f} needs the etcd store")
    tmp = Path(tempfile.mkdtemp(prefix="labkit-histories-", dir=workdir))
    etcd: EtcdCluster | None = None
    api: ApiServerProcess | None = None
    history = History()
    try:
        if store == "etcd":
            etcd = EtcdCluster(members=3)
            etcd.start()
            url = etcd.url
        elif store == "sqlite":
            url = f"sqlite:{tmp / 'store.db'}"
        else:
            url = "memory"
        api = ApiServerProcess(url, tmp)
        api.start()
        ns = "lin-" + uuid.uuid4().hex[:6]
        ns_rv = _wait_for_write(api.url, "/api/v1/namespaces", {"metadata": {"name": ns}}, 10)
        path = f"/api/v1/namespaces/{ns}/configmaps"
        watcher = WatchRecorder(api.url, path, ns_rv)
        watcher.start()
        names = [f"obj-{i}" for i in range(keys)]
        stop = threading.Event()
        threads = [threading.Thread(target=run_client, args=(ObjectClient(api.url, ns, history, p, timeout), names,
                                                             stop, seed * 1000 + p), daemon=True)
                   for p in range(clients)]
        injector = Injector(api, etcd)
        started = time.monotonic()
        for t in threads:
            t.start()
        slot = seconds / (len(faults) + 1)
        for i, f in enumerate(faults):
            time.sleep(max(0.0, started + slot * (i + 1) - 1.0 - time.monotonic()))
            injector.inject(f)
        time.sleep(max(0.0, started + seconds - time.monotonic()))
        stop.set()
        for t in threads:
            t.join(timeout + 5)
        injector.heal()
        # the memory store forgets everything with its process: the namespace too
        _wait_for_write(api.url, "/api/v1/namespaces", {"metadata": {"name": ns}}, 15)
        # every key read once more after the faults: a write lost in a crash shows here
        reader = ObjectClient(api.url, ns, history, clients, timeout=5)
        for name in names:
            for _ in range(50):
                if reader.get(name).status == "ok":
                    break
                time.sleep(0.1)
        marker = _wait_for_write(api.url, path, configmap(ns, "watch-marker", "end"), 15)
        watcher.wait_for(marker, 15)
        watcher.stop()
        elapsed = time.monotonic() - started
    finally:
        if api is not None:
            api.stop()
        if etcd is not None:
            etcd.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return Report(store, list(faults), history, check_history(history), check_revision_order(history),
                  check_watch(history, watcher.events, watcher.gaps, marker), injector.timeline, elapsed)
