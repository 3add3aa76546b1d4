"""One Docker Engine of the swarm: a ``dockerd`` in its node's network namespace and UTS namespace,
with its own data root, exec root, pid file and socket under the swarm's folder.

The engine starts its own ``containerd`` (below its exec root), so nothing is shared with the
host's Docker but the kernel and the binaries. Its containers' cgroups are under
``labkit/swarm-<id>-n<i>`` so ``labkit gc`` finds them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from labkit.swarm import network

#: the docker CLI may be newer than the engine; this is the engine's API (Docker 20.10)
API_VERSION = "1.41"


class EngineError(RuntimeError):
    """An engine did not start or a docker command against it failed (the message is Docker's)."""


@dataclass
class Engine:
    swarm_id: str
    index: int
    root: Path  # <state>/swarm/<id>/n<i>

    @property
    def name(self) -> str:
        """The node's hostname, which Swarm shows as the node's name."""
        return f"node-{self.index}"

    @property
    def address(self) -> str:
        return network.address(self.index)

    @property
    def netns(self) -> str:
        return network.netns_name(self.swarm_id, self.index)

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def data_root(self) -> Path:
        return self.root / "data"

    @property
    def host(self) -> str:
        """The ``-H`` value for this engine's docker CLI."""
        return f"unix://{self.socket}"

    def argv(self) -> list[str]:
        set_hostname = 'echo "$1" > /proc/sys/kernel/hostname && shift && exec "$@"'
        return ["nsenter", f"--net={network.NETNS_DIR / self.netns}", "unshare", "--uts",
                "sh", "-c", set_hostname, "sh", self.name,
                "dockerd", "--config-file", str(self.root / "daemon.json"),
                "--data-root", str(self.data_root), "--exec-root", str(self.root / "exec"),
                "--pidfile", str(self.root / "dockerd.pid"), "-H", self.host,
                "--cgroup-parent", f"/labkit/swarm-{self.swarm_id}-n{self.index}"]

    def start(self) -> None:
        """Start ``dockerd`` in the background (see :meth:`wait_ready`)."""
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "daemon.json").write_text("{}\n")  # not the host's /etc/docker/daemon.json
        # a stopped engine's pid files may name a process that is gone but not yet reaped: dockerd
        # would then wait for "the containerd that is still running" and give up
        for stale in (self.root / "dockerd.pid", self.root / "exec" / "containerd" / "containerd.pid"):
            stale.unlink(missing_ok=True)
        log = open(self.root / "dockerd.log", "ab")  # noqa: SIM115 - the engine keeps it open
        self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        log.close()

    def ping(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(str(self.socket))
                s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                return s.recv(4096).rstrip().endswith(b"OK")
        except OSError:
            return False

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.ping():
            if getattr(self, "proc", None) is not None and self.proc.poll() is not None:
                raise EngineError(f"dockerd of {self.name} exited ({self.proc.returncode}): {self.log_tail()}")
            if time.monotonic() > deadline:
                raise EngineError(f"dockerd of {self.name} not ready after {timeout} s: {self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self, lines: int = 3) -> str:
        try:
            return " | ".join((self.root / "dockerd.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def running(self) -> bool:
        return getattr(self, "proc", None) is not None and self.proc.poll() is None

    def docker(self, *args: str, check: bool = True, timeout: float = 60, stdin: bytes | None = None) -> str:
        """Run the docker CLI against this engine; its stdout (raises :class:`EngineError` on failure)."""
        env = {**os.environ, "DOCKER_API_VERSION": API_VERSION, "DOCKER_CLI_HINTS": "false"}
        env.pop("DOCKER_CONTEXT", None)
        try:
            res = subprocess.run(["docker", "-H", self.host, *args], input=stdin, capture_output=True,
                                 timeout=timeout, env=env)
        except subprocess.TimeoutExpired as exc:
            raise EngineError(f"{self.name}: docker {' '.join(args)}: no answer in {timeout} s") from exc
        out, err = res.stdout.decode(errors="replace").strip(), res.stderr.decode(errors="replace").strip()
        if check and res.returncode != 0:
            raise EngineError(f"{self.name}: docker {' '.join(args)}: {err or out}")
        return out

    def stop(self, grace: float = 0) -> None:
        """Stop the engine the way a crashed or powered-off machine stops: its dockerd, containerd,
        shims and containers all end at once (or after ``grace`` seconds for a clean dockerd exit)."""
        if self.running() and grace > 0:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        from labkit.swarm.leftovers import kill_engine_processes

        if getattr(self, "proc", None) is not None and self.proc.poll() is None:
            self.proc.kill()  # dockerd is this process's child: kill and reap it first
            self.proc.wait(5)
        kill_engine_processes(self.root, f"swarm-{self.swarm_id}-n{self.index}", self.netns)
