"""``python -m labkit.mesos``: a master with N agents, serving until Ctrl-C (for labs and trying frameworks)."""

from __future__ import annotations

import argparse
import gc
import signal
import threading

from labkit.mesos.master import GC_THRESHOLDS, Master


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m labkit.mesos", description=__doc__)
    ap.add_argument("--port", type=int, default=5050, help="Mesos' own default is 5050")
    ap.add_argument("--agents", type=int, default=3)
    ap.add_argument("--cpus", type=float, default=2.0, help="per agent")
    ap.add_argument("--mem", type=float, default=1024.0, help="MB per agent")
    ap.add_argument("--runtime", default=None, help="labkit runtime for tasks (default: the host's best)")
    ap.add_argument("--allocation-interval", type=float, default=1.0)
    args = ap.parse_args(argv)
    gc.set_threshold(*GC_THRESHOLDS)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with Master(runtime=args.runtime, port=args.port, allocation_interval=args.allocation_interval) as m:
        for i in range(args.agents):
            m.add_agent(f"agent-{i + 1}", cpus=args.cpus, mem=args.mem)
        print(f"Mesos master at {m.url}/api/v1/scheduler; {args.agents} agents of {args.cpus} cpus, "
              f"{args.mem:.0f} MB; tasks run on {m.runtime_reason}", flush=True)
        try:
            done.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
