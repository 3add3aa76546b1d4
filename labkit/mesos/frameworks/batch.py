"""A batch framework: run ``--tasks`` copies of a command to completion, then TEARDOWN and exit.

It packs as many waiting tasks into each offer as fit (a batch system wants throughput, not
spreading; ``--per-offer`` caps that), relaunches a failed task up to ``--retries`` times, and declines offers it cannot use.

    python -m labkit.mesos.frameworks.batch --master URL --tasks 8 --cmd 'echo $MESOS_TASK_ID'
"""

from __future__ import annotations

import sys
from typing import Any

from labkit.mesos.client import offered, task_info
from labkit.mesos.frameworks.base import Framework, common_args, say
from labkit.mesos.protocol import TERMINAL, TaskState


class Batch(Framework):
    name = "batch"

    def __init__(self, args: Any) -> None:
        super().__init__(args)
        self.waiting = [f"job-{i}" for i in range(args.tasks)]
        self.tries = dict.fromkeys(self.waiting, 0)
        self.running: set[str] = set()
        self.finished: set[str] = set()
        self.failed: set[str] = set()

    def offers(self, offers: list[dict[str, Any]]) -> None:
        for offer in offers:
            oid, have = offer["id"]["value"], offered(offer)
            cpus, mem = have.get("cpus", 0.0), have.get("mem", 0.0)
            infos = []
            while (self.waiting and cpus + 1e-9 >= self.args.cpus and mem + 1e-9 >= self.args.mem
                   and not (self.args.per_offer and len(infos) >= self.args.per_offer)):
                tid = self.waiting.pop(0)
                self.tries[tid] += 1
                cmd = f"MESOS_TASK_ID={tid}; {self.args.cmd}"
                infos.append(task_info(tid, offer["agent_id"]["value"], cmd, self.args.cpus, self.args.mem,
                                       image=self.args.image))
                cpus, mem = cpus - self.args.cpus, mem - self.args.mem
                self.running.add(tid)
            if infos:
                self.client.accept([oid], infos, self.args.refuse_seconds)
                say("launch", tasks=[ti["task_id"]["value"] for ti in infos], hostname=offer["hostname"], offer=oid)
            else:
                self.client.decline([oid], self.args.refuse_seconds)
                say("decline", offer=oid, hostname=offer["hostname"],
                    why="nothing waiting" if not self.waiting else "too small")

    def update(self, status: dict[str, Any]) -> None:
        tid, state = status["task_id"]["value"], status["state"]
        say("update", task=tid, state=state, message=status.get("message", ""))
        if tid not in self.running or TaskState[state] not in TERMINAL:
            return
        self.running.discard(tid)
        if state == "TASK_FINISHED":
            self.finished.add(tid)
        elif self.tries[tid] <= self.args.retries:
            self.waiting.append(tid)
            self.client.call("REVIVE", {})
        else:
            self.failed.add(tid)
        if not self.waiting and not self.running:
            say("done", finished=len(self.finished), failed=len(self.failed))
            self.client.call("TEARDOWN")
            self.exit_code = 0 if not self.failed else 1
            self.done = True


def main(argv: list[str] | None = None) -> int:
    ap = common_args("labkit.mesos.frameworks.batch", __doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=4)
    ap.add_argument("--retries", type=int, default=2)
    ap.add_argument("--per-offer", type=int, default=0,
                    help="launch at most this many tasks from one offer (0: as many as fit); 1 lets the "
                         "master's DRF order decide each task, as in the DRF paper's example")
    return Batch(ap.parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
