"""How the node's plug-in servers (CRI, CSI driver, device plugin) run in the foreground."""

from __future__ import annotations

import signal
import threading


def wait_for_termination() -> None:
    """Block until SIGTERM or SIGINT, so the caller can stop its gRPC server cleanly: a kubelet or
    ``labkit cluster down`` stops these servers with SIGTERM, a person at a terminal with Ctrl-C."""
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
