"""Shared helpers for the store tests (no tests here)."""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Iterator

from labkit.controlplane.store import Event


class Collector:
    """A watch callback that remembers every event and lets a test wait for a count."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.batches: list[list[Event]] = []
        self._cond = threading.Condition()

    def __call__(self, batch: list[Event]) -> None:
        with self._cond:
            self.batches.append(list(batch))
            self.events.extend(batch)
            self._cond.notify_all()

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Event]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.events) >= n, timeout)
            assert len(self.events) >= n, f"expected {n} events, got {len(self.events)}: {self.events}"
            return list(self.events)


def etcd_available() -> bool:
    return shutil.which("etcd") is not None


@contextlib.contextmanager
def running_etcd(members: int = 1) -> Iterator:
    from labkit.controlplane.store.etcd_server import EtcdCluster

    cluster = EtcdCluster(members=members)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
