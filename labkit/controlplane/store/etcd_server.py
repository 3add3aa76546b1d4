"""Start and stop real etcd for tests and labs: one member, or a three-member cluster on loopback.

Each member is an ordinary ``etcd`` process listening on random free ports of 127.0.0.1, with its
data directory under the labkit data dir (``<data>/etcd/labkit-etcd-XXXX/<member>``). A lab can
``kill()`` a member (SIGKILL, as a crash would) and ``start()`` it again from its data directory,
and watch Raft keep or lose its quorum. ``stop()`` ends every member and removes the data unless
the cluster was given a directory to keep.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from labkit import system_parts
from labkit.paths import data_dir

ETCD_HINT = f"install it with `{system_parts.install_hint('etcd')}` or put `etcd` on PATH"


def etcd_binary() -> str:
    """The etcd executable, or a clear error saying how to get one."""
    path = shutil.which("etcd")
    if path is None:
        raise FileNotFoundError(f"etcd is not installed: {ETCD_HINT}")
    return path


def etcd_version() -> str:
    out = subprocess.run([etcd_binary(), "--version"], capture_output=True, text=True, timeout=10)
    first = (out.stdout or out.stderr).splitlines()
    return first[0].replace("etcd Version:", "").strip() if first else "?"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


try:  # looked up here, not in the forked child, where taking the loader's lock could deadlock
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None


def _die_with_parent() -> None:
    """In the child: get SIGKILL if the process that started us dies, so etcd never outlives a test."""
    if _prctl is not None:
        _prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class EtcdMember:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def healthy(self, timeout: float = 1.0) -> bool:
        """True when this member answers and its cluster has a leader (etcd's /health)."""
        try:
            with urllib.request.urlopen(self.client_url + "/health", timeout=timeout) as r:
                return json.loads(r.read() or b"{}").get("health") in ("true", True)
        except (OSError, ValueError):
            return False


class EtcdCluster:
    """One or more etcd members on loopback, owned by this process."""

    def __init__(self, members: int = 1, data_dir_path: str | Path | None = None,
                 keep_data: bool | None = None) -> None:
        if members < 1:
            raise ValueError("an etcd cluster needs at least one member")
        etcd_binary()
        if data_dir_path is None:
            parent = data_dir() / "etcd"
            parent.mkdir(parents=True, exist_ok=True)
            self.data_dir = Path(tempfile.mkdtemp(prefix="labkit-etcd-", dir=parent))
            self.keep_data = bool(keep_data)
        else:
            self.data_dir = Path(data_dir_path)
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.keep_data = True if keep_data is None else keep_data
        self.token = self.data_dir.name
        self._atexit = False
        saved = self.data_dir / "labkit-members.json"
        if saved.exists():  # restarting a kept cluster: same names, same ports
            spec = json.loads(saved.read_text())
            self.members = [EtcdMember(m["name"], m["client_port"], m["peer_port"], self.data_dir / m["name"])
                            for m in spec]
        else:
            self.members = [EtcdMember(f"m{i}", _free_port(), _free_port(), self.data_dir / f"m{i}")
                            for i in range(members)]
            saved.write_text(json.dumps([{"name": m.name, "client_port": m.client_port,
                                          "peer_port": m.peer_port} for m in self.members]))

    # ---- addresses ---------------------------------------------------------------------
    @property
    def endpoints(self) -> list[str]:
        return [m.client_url for m in self.members]

    @property
    def url(self) -> str:
        """The store URL for :func:`labkit.controlplane.store.open_store`."""
        return "etcd:" + ",".join(self.endpoints)

    def member(self, which: int | str) -> EtcdMember:
        if isinstance(which, int):
            return self.members[which]
        for m in self.members:
            if m.name == which:
                return m
        raise KeyError(f"no etcd member {which!r}; members are {[m.name for m in self.members]}")

    # ---- life cycle --------------------------------------------------------------------
    def _command(self, m: EtcdMember) -> list[str]:
        initial = ",".join(f"{x.name}={x.peer_url}" for x in self.members)
        return [etcd_binary(), "--name", m.name, "--data-dir", str(m.data_dir),
                "--listen-client-urls", m.client_url, "--advertise-client-urls", m.client_url,
                "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
                "--initial-cluster", initial, "--initial-cluster-state", "new",
                "--initial-cluster-token", self.token,
                "--heartbeat-interval", "50", "--election-timeout", "500",
                "--logger", "zap", "--log-outputs", "stderr"]

    def start(self, member: int | str | None = None, timeout: float = 20.0) -> None:
        """Start every member (or just one) and wait until the cluster answers with a leader."""
        targets = self.members if member is None else [self.member(member)]
        if not self._atexit:  # a notebook that never calls stop() still leaves nothing behind
            atexit.register(self.stop)
            self._atexit = True
        for m in targets:
            if m.running:
                continue
            m.data_dir.parent.mkdir(parents=True, exist_ok=True)
            log = open(self.data_dir / f"{m.name}.log", "ab")  # noqa: SIM115 - owned by the child
            m.process = subprocess.Popen(self._command(m), stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                         preexec_fn=_die_with_parent)
            log.close()
        self.wait_ready(targets, timeout)

    def wait_ready(self, members: list[EtcdMember] | None = None, timeout: float = 20.0) -> None:
        members = self.members if members is None else members
        need_quorum = sum(m.running for m in self.members) > len(self.members) // 2
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [m for m in members if m.process is not None and m.process.poll() is not None]
            if dead:
                raise RuntimeError(f"etcd member {dead[0].name} exited: see {self.data_dir / (dead[0].name + '.log')}")
            if not need_quorum:
                # without a quorum /health says false forever: being able to connect is all we wait for
                if all(_port_open(m.client_port) for m in members):
                    return
            elif all(m.healthy(0.5) for m in members):
                return
            time.sleep(0.05)
        raise TimeoutError(f"etcd did not become ready in {timeout:.0f} s: see the logs in {self.data_dir}")

    def kill(self, member: int | str) -> None:
        """SIGKILL one member, as a crash would; its data directory stays."""
        m = self.member(member)
        if m.process is not None:
            if m.process.poll() is None:
                m.process.kill()
            m.process.wait()
        m.process = None

    def stop(self) -> None:
        """End every member; remove the data unless this cluster keeps it."""
        for m in self.members:
            if m.process is not None and m.process.poll() is None:
                m.process.terminate()
        for m in self.members:
            if m.process is not None:
                try:
                    m.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    m.process.kill()
                    m.process.wait()
            m.process = None
        if not self.keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        if self._atexit:
            atexit.unregister(self.stop)
            self._atexit = False

    def status(self) -> list[dict]:
        """Per member: name, URL, running, healthy - what a lab prints after killing one."""
        return [{"member": m.name, "url": m.client_url, "running": m.running,
                 "healthy": m.running and m.healthy(0.5)} for m in self.members]

    def __enter__(self) -> EtcdCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EtcdCluster({len(self.members)} members at {', '.join(self.endpoints)})"


def _port_open(port: int) -> bool:
    with contextlib.closing(socket.socket()) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def etcdctl(cluster: EtcdCluster, *args: str, timeout: float = 10.0) -> str:
    """Run ``etcdctl`` (API v3) against the cluster and return its output, for labs."""
    exe = shutil.which("etcdctl")
    if exe is None:
        raise FileNotFoundError(system_parts.not_installed("etcdctl"))
    env = dict(os.environ, ETCDCTL_API="3")
    out = subprocess.run([exe, "--endpoints", ",".join(cluster.endpoints), *args], capture_output=True,
                         text=True, env=env, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"etcdctl {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout
