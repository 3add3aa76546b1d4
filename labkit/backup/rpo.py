"""Measure a backup's recovery point: write numbered objects while the snapshot is taken, then count.

A write is *acknowledged* when its call returned. Every write acknowledged before the snapshot
started must be in the restored store (an RPO of zero for them); writes acknowledged later may be
lost, and how many were is the RPO in writes. Because the writer writes 0, 1, 2 ... one after the
other, a consistent snapshot holds exactly 0 .. k-1 for some k: a gap would mean a torn copy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass


class NumberedWriter:
    """Calls ``write(n)`` for n = 0, 1, 2 ... on a thread; ``acked`` counts the calls that returned."""

    def __init__(self, write: Callable[[int], None], pause: float = 0.0):
        self._write = write
        self.pause = pause
        self.acked = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="numbered-writer", daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            try:
                self._write(n)
            except BaseException as exc:  # reported by stop(): the count is only honest without errors
                self.error = exc
                return
            n += 1
            self.acked = n
            if self.pause:
                time.sleep(self.pause)

    def start(self, at_least: int = 1, timeout: float = 30.0) -> NumberedWriter:
        """Start writing and return once ``at_least`` writes were acknowledged."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while self.acked < at_least and self.error is None and time.monotonic() < deadline:
            time.sleep(0.005)
        if self.error is not None:
            raise RuntimeError(f"the numbered writer failed: {self.error}") from self.error
        return self

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(30)
        if self.error is not None:
            raise RuntimeError(f"the numbered writer failed: {self.error}") from self.error
        return self.acked


@dataclass
class RPOReport:
    acked_before: int  # writes acknowledged before the snapshot started
    acked_during: int  # acknowledged while it was taken
    acked_total: int  # acknowledged by the time the writer stopped (the disaster)
    restored: int  # numbered objects in the restored store
    contiguous: bool  # the restored numbers are exactly 0 .. restored-1 (no torn copy)
    lost_before: int  # acknowledged before the snapshot started, yet missing after the restore: must be 0

    @property
    def lost(self) -> int:
        """The RPO in writes: acknowledged writes that the restore does not have."""
        return max(0, self.acked_total - self.restored)

    def lines(self) -> list[str]:
        return [f"acknowledged before the snapshot started   {self.acked_before}",
                f"acknowledged while it was taken             {self.acked_during}",
                f"acknowledged in all (until the disaster)    {self.acked_total}",
                f"in the restored store                       {self.restored} "
                f"({'0..' + str(self.restored - 1) + ', no gaps' if self.contiguous else 'WITH GAPS: torn copy'})",
                f"lost of those acknowledged before it        {self.lost_before}",
                f"RPO: acknowledged writes lost               {self.lost} (all written after the snapshot)"]


def report(acked_before: int, acked_after_snapshot: int, acked_total: int, restored: Iterable[int]) -> RPOReport:
    numbers = set(restored)
    return RPOReport(acked_before, acked_after_snapshot - acked_before, acked_total, len(numbers),
                     numbers == set(range(len(numbers))), sum(1 for n in range(acked_before) if n not in numbers))
