"""One fault: inject it, hold it for a while, undo it — whatever happens in between.

    with chaos.fault(cluster, "process-pause", target="scheduler"):
        ...                                   # the scheduler is stopped in here
    chaos.inject(cluster, "node-down", target="node-2", duration=5)   # the same, held for 5 s

Every change is first written to the fault's :class:`~labkit.chaos.journal.Journal`, so Ctrl-C,
an exception or a SIGTERM undoes it on the way out, and a ``kill -9`` leaves a record that
``labkit gc`` undoes.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

from labkit.chaos.journal import Journal
from labkit.chaos.target import ChaosError, ClusterTarget


class Fault:
    """Base of every action. Subclasses set :attr:`action` and write :meth:`inject`."""

    action = "?"
    #: what ``--target`` names for this action (for help texts and errors)
    target_help = ""

    def __init__(self, cluster: Any, target: str, **options: Any):
        self.cluster = ClusterTarget.of(cluster)
        if not target:
            raise ChaosError(f"{self.action} needs a target: {self.target_help}")
        self.target = target
        self.options = options
        self.journal = Journal(self.action, f"{self.cluster.name}:{target}")
        self.log: list[str] = []  # what the fault did, one line per step, for the CLI and the labs
        self.injected_at: float | None = None

    def say(self, line: str) -> None:
        self.log.append(line)

    # ------------------------------------------------------------------ to write in subclasses
    def inject(self) -> None:
        raise NotImplementedError

    def recover(self) -> None:
        """Anything to do after the journal's steps are undone (e.g. wait for a restarted process)."""

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Fault:
        self.injected_at = time.time()
        try:
            self.inject()
        except BaseException:
            self.undo()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.undo()

    def undo(self) -> None:
        problems = self.journal.undo()
        if problems:
            raise ChaosError(f"{self.action} on {self.target}: could not undo everything ({'; '.join(problems)}); "
                             f"'labkit gc --only chaos' tries again from {self.journal.path}")
        self.recover()
        if self.injected_at is not None:
            self.say(f"undone after {time.time() - self.injected_at:.1f}s")
            self.injected_at = None

    def hold(self, duration: float) -> None:
        """Keep the fault for ``duration`` seconds; SIGTERM ends it early, as Ctrl-C does."""
        with sigterm_as_interrupt():
            time.sleep(max(0.0, duration))


class sigterm_as_interrupt:
    """While held, SIGTERM raises KeyboardInterrupt in the main thread, so the fault is undone."""

    def __enter__(self) -> None:
        self.old = None
        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGTERM, self._raise)

    @staticmethod
    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    def __exit__(self, *exc: object) -> None:
        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)
