"""The faults a history run injects, each one undone by itself: kill -9 and restart of the apiserver,
SIGSTOP/SIGCONT of a process, and the loss of one etcd member of three.

The apiserver runs as its own process (``python -m labkit.controlplane.apiserver``), started the
way :mod:`labkit.cluster.supervisor` starts every cluster component, so that ``kill -9`` is a
real crash: whatever the process held in memory is gone, and only the store remains.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from labkit.cluster.supervisor import Component, free_port, http_ok, reap, spawn, tail, wait_for
from labkit.controlplane.store.etcd_server import EtcdCluster

FAULTS = ("apiserver-kill", "apiserver-pause", "etcd-member-kill", "etcd-member-pause")


class ApiServerProcess:
    """One apiserver process on a fixed port, which can be crashed, paused and started again."""

    def __init__(self, store_url: str, workdir: Path, compact_interval: float = 0.0, port: int = 0):
        self.store_url, self.workdir = store_url, workdir
        self.port = port or free_port()
        self.compact_interval = compact_interval
        self.proc: Component | None = None
        self.log = str(workdir / "apiserver.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        cmd = [sys.executable, "-m", "labkit.controlplane.apiserver", "--port", str(self.port),
               "--store", self.store_url, "--compact-interval", str(self.compact_interval)]
        self.proc = spawn("apiserver", cmd, self.log, str(self.workdir), die_with_parent=True)
        c = self.proc

        def up() -> bool:
            if not c.alive:
                raise RuntimeError(f"the apiserver exited at start; its log {self.log} ends with:\n{tail(self.log)}")
            return http_ok(self.url + "/version")
        wait_for(up, timeout, "apiserver", self.log)

    def kill(self) -> None:
        """kill -9, as a crash would."""
        if self.proc is not None and self.proc.alive:
            os.kill(self.proc.pid, signal.SIGKILL)  # type: ignore[arg-type]
            self.proc.proc.wait(10)  # type: ignore[union-attr]

    def pause(self) -> None:
        if self.proc is not None and self.proc.alive:
            os.kill(self.proc.pid, signal.SIGSTOP)  # type: ignore[arg-type]

    def resume(self) -> None:
        if self.proc is not None and self.proc.alive:
            os.kill(self.proc.pid, signal.SIGCONT)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.proc is not None:
            self.resume()
            if self.proc.alive:
                os.kill(self.proc.pid, signal.SIGTERM)  # type: ignore[arg-type]
            reap(self.proc, 10)
            self.proc = None


def etcd_leader(cluster: EtcdCluster) -> int:
    """Index of the member that leads now (0 if none can tell): the member worth hurting."""
    for m in cluster.members:
        if not m.running:
            continue
        try:
            req = urllib.request.Request(m.client_url + "/v3/maintenance/status", b"{}", method="POST")
            with urllib.request.urlopen(req, timeout=0.5) as r:
                status = json.loads(r.read())
        except (OSError, ValueError):
            continue
        if status.get("leader") and status.get("leader") == status.get("header", {}).get("member_id"):
            return cluster.members.index(m)
    return 0


@dataclass
class Injector:
    """Runs named faults against one apiserver (and its etcd cluster, when it has one), and logs them."""

    apiserver: ApiServerProcess
    etcd: EtcdCluster | None = None
    pause_seconds: float = 2.0
    down_seconds: float = 2.0
    timeline: list[tuple[float, str]] = field(default_factory=list)

    def _note(self, what: str) -> None:
        self.timeline.append((time.monotonic(), what))

    def inject(self, fault: str) -> None:
        """Do the fault, wait, undo it; returns once the system is whole again."""
        if fault == "apiserver-kill":
            self._note("kill -9 apiserver")
            self.apiserver.kill()
            self.apiserver.start()
            self._note("apiserver restarted")
        elif fault == "apiserver-pause":
            self._note("SIGSTOP apiserver")
            self.apiserver.pause()
            time.sleep(self.pause_seconds)
            self.apiserver.resume()
            self._note("SIGCONT apiserver")
        elif fault in ("etcd-member-kill", "etcd-member-pause"):
            if self.etcd is None:
                raise ValueError(f"{fault} needs the etcd store")
            i = etcd_leader(self.etcd)
            member = self.etcd.members[i]
            if fault == "etcd-member-kill":
                self._note(f"kill -9 etcd member {member.name} (the leader)")
                self.etcd.kill(i)
                time.sleep(self.down_seconds)
                self.etcd.start(i)
                self._note(f"etcd member {member.name} restarted")
            else:
                assert member.process is not None
                self._note(f"SIGSTOP etcd member {member.name} (the leader)")
                member.process.send_signal(signal.SIGSTOP)
                time.sleep(self.pause_seconds)
                member.process.send_signal(signal.SIGCONT)
                self._note(f"SIGCONT etcd member {member.name}")
        else:
            raise ValueError(f"unknown fault {fault!r}; the faults are {', '.join(FAULTS)}")

    def heal(self) -> None:
        """Undo whatever an interrupted fault left: every process running and none paused."""
        self.apiserver.resume()
        if self.apiserver.proc is None or not self.apiserver.proc.alive:
            self.apiserver.start()
        if self.etcd is not None:
            for i, m in enumerate(self.etcd.members):
                if m.process is not None:
                    m.process.send_signal(signal.SIGCONT)
                if not m.running:
                    self.etcd.start(i)
