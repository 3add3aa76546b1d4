"""A lease is not a lock: leader election loses mutual exclusion under a pause, and fencing fixes it.

Two candidates share a Lease (:class:`labkit.client.leaderelection.LeaderElector`) and a *ledger*,
a ConfigMap both append to while they lead. A leader checks that it still holds the lease, then
works a moment, then writes. Pause it (SIGSTOP, as a long GC pause or a stalled VM would) between
the check and the write for longer than the lease: the other candidate takes the lease over and
writes, and when the first one resumes it finishes the write it had already decided to make. Two
leaders wrote; nothing in the lease could stop it (Jepsen found the same of etcd's locks, and
Kleppmann's "How to do distributed locking" explains why).

Fencing: every leader takes a token that grows with each takeover, the Lease's
``spec.leaseTransitions``, and the ledger keeps the largest token it has accepted. A write with a
smaller token is refused. The check and the write are one compare-and-swap on the ledger's
resourceVersion, so no write slips in between.

    python -m labkit.reliability.fencing --kubeconfig K --identity a --ledger default/ledger --lease demo [--fencing]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field

from labkit.client.kubeconfig import write_kubeconfig
from labkit.client.leaderelection import LeaderElector
from labkit.client.rest import ApiError, Client
from labkit.reliability.clients import request

LEASE_SECONDS = 1.0


class Fenced(Exception):
    """The ledger has accepted a newer leader's token: this leader's write is refused."""


async def append(client: Client, namespace: str, ledger: str, identity: str, token: int, n: int,
                 fencing: bool) -> None:
    """Append ``(identity, token, n)`` to the ledger; with fencing, only if no newer token wrote first."""
    while True:
        cm = await client.get("configmaps", ledger, namespace)
        data = cm.get("data") or {}
        entries = json.loads(data.get("entries") or "[]")
        fence = int(data.get("fence") or -1)
        if fencing and token < fence:
            raise Fenced(f"{identity} holds token {token}, the ledger has seen {fence}")
        entries.append([identity, token, n])
        cm["data"] = {"entries": json.dumps(entries), "fence": str(max(fence, token))}
        try:
            await client.update("configmaps", cm)  # the resourceVersion read above: check and write are one CAS
            return
        except ApiError as exc:
            if exc.code != 409:
                raise


async def candidate(kubeconfig: str, identity: str, namespace: str, ledger: str, lease: str, fencing: bool,
                    writes: int, work: float) -> int:
    """Win the lease, then ``writes`` times: check the lease, work, write. Prints each step on stdout."""
    def say(line: str) -> None:
        print(line, flush=True)

    client = Client(kubeconfig)
    try:
        elector = LeaderElector(client, lease, namespace, identity, lease_duration=LEASE_SECONDS, renew_every=0.2,
                                retry_every=0.1)
        await elector.acquire()
        token = int(((await client.get("leases", lease, namespace)).get("spec") or {}).get("leaseTransitions") or 0)
        say(f"LEADER {identity} token={token}")
        for n in range(writes):
            if not await elector.try_acquire_or_renew():
                say(f"LOST {identity}")
                return 1
            say(f"CHECKED {identity} {n}")  # still the leader, as far as it can tell
            await asyncio.sleep(work)  # a pause that lands here outlives the lease
            try:
                await append(client, namespace, ledger, identity, token, n, fencing)
            except Fenced as exc:
                say(f"FENCED {exc}")
                return 2
            say(f"WROTE {identity} {n}")
        return 0
    finally:
        await client.close()


@dataclass
class DemoResult:
    fencing: bool
    entries: list[tuple[str, int, int]]
    outputs: dict[str, list[str]] = field(default_factory=dict)

    @property
    def stale_writes(self) -> list[tuple[str, int, int]]:
        """Entries written by a leader whose token is older than one already in the ledger."""
        top, out = -1, []
        for who, token, n in self.entries:
            if token < top:
                out.append((who, token, n))
            top = max(top, token)
        return out

    @property
    def fenced(self) -> bool:
        return any(line.startswith("FENCED") for line in self.outputs.get("a", []))


class _Lines:
    """A child's stdout, line by line, with a deadline."""

    def __init__(self, proc: subprocess.Popen):
        self.lines: list[str] = []
        self._q: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(proc,), daemon=True).start()

    def _pump(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._q.put(line.rstrip("\n"))

    def wait(self, prefix: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no line starting {prefix!r} in {timeout:.0f}s; got {self.lines}")
            try:
                line = self._q.get(timeout=left)
            except queue.Empty:
                continue
            self.lines.append(line)
            if line.startswith(prefix):
                return line


def demo(server: str, fencing: bool, namespace: str = "default") -> DemoResult:
    """Candidate a leads; it is paused between its check and its write; b takes over and writes; a resumes.

    Returns the ledger: without fencing it holds a's write after b's (two leaders wrote), with
    fencing a's late write was refused.
    """
    tag = uuid.uuid4().hex[:6]
    lease, ledger = f"demo-{tag}", f"ledger-{tag}"
    procs: dict[str, subprocess.Popen] = {}
    with tempfile.TemporaryDirectory(prefix="labkit-fencing-") as tmp:
        kubeconfig = str(write_kubeconfig(os.path.join(tmp, "kubeconfig"), server))

        # plain HTTP here: demo() may run inside a notebook's event loop, where asyncio.run cannot
        cms = f"/api/v1/namespaces/{namespace}/configmaps"
        made = request(server, "POST", cms, {"apiVersion": "v1", "kind": "ConfigMap",
                                             "metadata": {"name": ledger, "namespace": namespace},
                                             "data": {"entries": "[]"}})
        if made.code != 201:
            raise RuntimeError(f"could not create the ledger: {made.code} {made.body.get('message')}")

        def start(identity: str, writes: int) -> _Lines:
            cmd = [sys.executable, "-m", "labkit.reliability.fencing", "--kubeconfig", kubeconfig, "--identity",
                   identity, "--namespace", namespace, "--ledger", ledger, "--lease", lease, "--writes", str(writes),
                   "--work", "0.3"] + (["--fencing"] if fencing else [])
            procs[identity] = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
            return _Lines(procs[identity])

        try:
            a = start("a", 3)
            a.wait("CHECKED a 1")  # a has written once and just checked its lease again
            os.kill(procs["a"].pid, signal.SIGSTOP)
            b = start("b", 2)
            b.wait("WROTE b 1")  # b waited for the lease to expire, took it over and wrote twice
            os.kill(procs["a"].pid, signal.SIGCONT)
            for p in procs.values():
                p.wait(20)
        finally:
            for p in procs.values():
                if p.poll() is None:
                    os.kill(p.pid, signal.SIGCONT)
                    p.kill()
                    p.wait()
        outputs = {"a": _drain(a), "b": _drain(b)}

        cm = request(server, "GET", f"{cms}/{ledger}").body
        request(server, "DELETE", f"{cms}/{ledger}")
        request(server, "DELETE", f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{lease}")
        entries = [tuple(e) for e in json.loads(cm["data"]["entries"])]
    return DemoResult(fencing, entries, outputs)  # type: ignore[arg-type]


def _drain(lines: _Lines) -> list[str]:
    while not lines._q.empty():
        lines.lines.append(lines._q.get())
    return lines.lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labkit.reliability.fencing",
                                     description="One leader-election candidate that appends to a shared ledger.")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--identity", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--ledger", required=True, help="the ConfigMap both candidates append to")
    parser.add_argument("--lease", required=True, help="the Lease both candidates compete for")
    parser.add_argument("--writes", type=int, default=3)
    parser.add_argument("--work", type=float, default=0.3, help="seconds between the lease check and the write")
    parser.add_argument("--fencing", action="store_true", help="send the lease's transitions count as a fencing token")
    args = parser.parse_args(argv)
    return asyncio.run(candidate(args.kubeconfig, args.identity, args.namespace, args.ledger, args.lease,
                                 args.fencing, args.writes, args.work))


if __name__ == "__main__":
    sys.exit(main())
