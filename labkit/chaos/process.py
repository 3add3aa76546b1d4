"""``process-pause``: SIGSTOP a control-plane or node process for a while, then SIGCONT.

Chaos Mesh calls this a ProcessChaos/"process pause" (Litmus: ``process-kill``'s gentler sibling).
A paused process is the worst kind of slow: its sockets stay open and its peers cannot tell it
from a busy one. A paused apiserver holds its clients' requests; a paused kubelet stops renewing
its Lease, so after the node-monitor grace period the node turns NotReady (and back once the
kubelet runs again).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from labkit.chaos.fault import Fault


class ProcessPause(Fault):
    action = "process-pause"
    target_help = ("a component: apiserver, scheduler, controller-manager, kubelet-NODE, cri-NODE or etcd "
                   "(see 'labkit cluster status')")

    def inject(self) -> None:
        c = self.cluster.component(self.target)
        self.journal.add("sigcont", pid=c.pid)
        os.kill(c.pid, signal.SIGSTOP)
        self.pid = c.pid
        _wait_state(c.pid, stopped=True)  # a signal lands when the process next runs: wait for it
        self.say(f"paused {self.target} (pid {c.pid}) with SIGSTOP")

    def recover(self) -> None:
        _wait_state(self.pid, stopped=False)
        self.say(f"{self.target} continues (SIGCONT)")


def process_state(pid: int) -> str:
    """The one-letter state of ``/proc/PID/stat`` (``T``: stopped), or ``""`` for a process that is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _wait_state(pid: int, stopped: bool, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = process_state(pid)
        if not state or (state == "T") == stopped:
            return
        time.sleep(0.01)
