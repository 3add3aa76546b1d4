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

from labkit.chaos.fault import Fault


class ProcessPause(Fault):
    action = "process-pause"
    target_help = ("a component: apiserver, scheduler, controller-manager, kubelet-NODE, cri-NODE or etcd "
                   "(see 'labkit cluster status')")

    def inject(self) -> None:
        c = self.cluster.component(self.target)
        self.journal.add("sigcont", pid=c.pid)
        os.kill(c.pid, signal.SIGSTOP)
        self.say(f"paused {self.target} (pid {c.pid}) with SIGSTOP")

    def recover(self) -> None:
        self.say(f"{self.target} continues (SIGCONT)")
