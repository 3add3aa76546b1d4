"""Run an example framework as its own process and follow what it decides.

Labs, exercises and tests start ``python -m labkit.mesos.frameworks.NAME`` this way so that the
scheduler really lives outside the master: it talks to it only over the HTTP API. Each line the
framework prints is a JSON object (see :func:`labkit.mesos.frameworks.base.say`); they are kept
in ``events`` as they arrive.

    with FrameworkProcess("batch", master.url, "--tasks", "4", "--cmd", "echo hi") as fw:
        fw.wait_for(lambda e: e["event"] == "done")
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

KINDS = ("service", "batch")


class FrameworkProcess:
    """One framework process; ``events`` holds its JSON lines, ``pid`` its process id."""

    def __init__(self, kind: str, master_url: str, *args: str, script: str | None = None) -> None:
        """``kind`` is one of :data:`KINDS`, or any name when ``script`` (a Python file) is the framework."""
        if script is None and kind not in KINDS:
            raise ValueError(f"unknown framework {kind!r}: choose one of {', '.join(KINDS)}")
        self.kind = kind
        program = [script] if script else ["-m", f"labkit.mesos.frameworks.{kind}"]
        self._err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, *program, "--master", master_url, *args],
                                     stdout=subprocess.PIPE, stderr=self._err, text=True)
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                self.events.append({"event": "output", "line": line.rstrip()})

    def of(self, event: str) -> list[dict[str, Any]]:
        """The events named ``event`` so far (e.g. "launch", "decline", "update")."""
        return [e for e in list(self.events) if e.get("event") == event]

    def wait_for(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 30.0) -> dict[str, Any]:
        """The first event for which ``pred`` holds, waiting for it; TimeoutError says what came instead."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            events = list(self.events)
            for e in events[seen:]:
                if pred(e):
                    return e
            seen = len(events)
            if time.monotonic() > deadline or (self.proc.poll() is not None and not self._reader.is_alive()
                                               and seen == len(self.events)):
                tail = [e.get("event") for e in events[-5:]]
                raise TimeoutError(f"the {self.kind} framework (pid {self.pid}) did not report it; last events: "
                                   f"{tail}, exit code {self.proc.poll()}, stderr: {self.stderr_now()[-500:]!r}")
            time.sleep(0.05)

    def signal(self, sig: int = signal.SIGHUP) -> None:
        """Send a signal (the service framework reads its app file again on SIGHUP)."""
        self.proc.send_signal(sig)

    def stderr_now(self) -> str:
        self._err.seek(0)
        return self._err.read().decode(errors="replace")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then wait: its stream closes and the master removes the framework and kills its tasks."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout)
        return self.proc.returncode

    def __enter__(self) -> FrameworkProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
