"""The "bring up a cluster by hand" track: each component its own process, from its own command.

:class:`HandCluster` keeps a cluster in one folder (``cluster.json`` says which ports and
processes; ``logs/`` has each component's output), so a check made later, from another Python
process, finds the same cluster. It is the bare bones of :class:`labkit.Cluster`, in the open:
the commands are exactly the ones the README lists, and :meth:`HandCluster.stop` uses the same
clean-up helpers (``labkit.cluster.supervisor`` and ``labkit.cluster.cleanup``), so nothing leaks.

    hc = HandCluster(folder)
    print(" ".join(hc.command("etcd")))   # what you would type in a terminal
    hc.start("etcd")                      # ... or run it from here
    ...
    hc.stop()                             # kubelet first (it removes its pods), then the rest
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from labkit.cluster.supervisor import (
    ClusterError,
    Component,
    free_port,
    http_ok,
    raise_exited,
    reap,
    spawn,
    wait_for,
)

#: the order a cluster comes up in; :meth:`HandCluster.stop` goes the other way
COMPONENTS = ("etcd", "apiserver", "controller-manager", "scheduler", "cri", "kubelet")
_PROCS: dict[int, subprocess.Popen] = {}  # the processes this Python started, so stop() can reap them


class HandCluster:
    """A cluster whose components are started one by one; its state lives in ``folder``."""

    def __init__(self, folder: str | os.PathLike[str], node: str = "hand-1", runtime: str | None = None) -> None:
        self.folder = Path(folder).resolve()
        self.state_file = self.folder / "cluster.json"
        state = self._read()
        if not state:
            from labkit.runtime import choose_default

            state = {"ports": {"etcd": free_port(), "etcd-peer": free_port(), "apiserver": free_port()},
                     "node": node, "runtime": runtime or choose_default()[0], "pids": {}}
        self.state: dict[str, Any] = state

    # ------------------------------------------------------------------ where things are
    def _read(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(self.state, indent=1))

    @property
    def node(self) -> str:
        return self.state["node"]

    @property
    def runtime(self) -> str:
        return self.state["runtime"]

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.state['ports']['etcd']}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.state['ports']['apiserver']}"

    @property
    def kubeconfig(self) -> str:
        return str(self.folder / "kubeconfig")

    @property
    def cri_socket(self) -> Path:
        return self.folder / "cri.sock"

    def log(self, component: str) -> Path:
        return self.folder / "logs" / f"{component}.log"

    def command(self, component: str) -> list[str]:
        """The command line that starts ``component`` (the README's, with this cluster's ports)."""
        py = [sys.executable, "-m"]
        if component == "etcd":
            from labkit.controlplane.store.etcd_server import etcd_binary

            peer = f"http://127.0.0.1:{self.state['ports']['etcd-peer']}"
            return [etcd_binary(), "--name", "hand", "--data-dir", str(self.folder / "etcd"),
                    "--listen-client-urls", self.etcd_url, "--advertise-client-urls", self.etcd_url,
                    "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                    "--initial-cluster", f"hand={peer}"]
        if component == "apiserver":
            return [*py, "labkit.controlplane.apiserver", "--port", str(self.state["ports"]["apiserver"]),
                    "--store", f"etcd:{self.etcd_url}"]
        if component == "controller-manager":
            return [*py, "labkit.controlplane.controllers", "--kubeconfig", self.kubeconfig]
        if component == "scheduler":
            return [*py, "labkit.controlplane.scheduler", "--kubeconfig", self.kubeconfig]
        if component == "cri":
            return [*py, "labkit.node.cri.server", "--socket", str(self.cri_socket), "--backend", self.runtime]
        if component == "kubelet":
            return [*py, "labkit.node", "--kubeconfig", self.kubeconfig, "--node-name", self.node,
                    "--runtime", f"unix://{self.cri_socket}", "--cleanup-on-exit"]
        raise ClusterError(f"unknown component {component!r}: choose from {', '.join(COMPONENTS)}")

    # ------------------------------------------------------------------ processes
    def component(self, name: str) -> Component | None:
        pid = self.state["pids"].get(name)
        if not pid:
            return None
        return Component(name, [], str(self.log(name)), pid, _PROCS.get(pid))

    def running(self, name: str) -> bool:
        c = self.component(name)
        return bool(c and c.alive)

    def start(self, name: str, wait: bool = True, timeout: float = 40.0) -> Component:
        """Start one component (a no-op when it already runs); with ``wait``, until it answers."""
        if self.running(name):
            return self.component(name)  # type: ignore[return-value]
        if name == "apiserver":  # what every other component reads to find the API
            from labkit.client.kubeconfig import write_kubeconfig

            write_kubeconfig(self.kubeconfig, self.url, name="hand")
        self.log(name).parent.mkdir(parents=True, exist_ok=True)
        c = spawn(name, self.command(name), str(self.log(name)), str(self.folder), die_with_parent=True)
        assert c.proc is not None and c.pid is not None
        _PROCS[c.pid] = c.proc
        self.state["pids"][name] = c.pid
        self._save()
        if wait:
            self.wait(name, timeout)
        return c

    def wait(self, name: str, timeout: float = 40.0) -> None:
        """Until ``name`` answers: etcd's /health, the API's /version, the CRI socket; else until it lives."""
        c = self.component(name)
        if c is None:
            raise ClusterError(f"{name} was not started")
        ready = {"etcd": lambda: http_ok(self.etcd_url + "/health"),
                 "apiserver": lambda: http_ok(self.url + "/version"),
                 "cri": self.cri_socket.exists}.get(name, lambda: True)
        wait_for(lambda: ready() or (not c.alive and raise_exited(c)), timeout, name, c.log)

    def stop(self) -> None:
        """Stop every component, kubelet first (it removes its pods), and sweep what a crash left."""
        from labkit.cluster.cleanup import remove_nodes, sweep_pods

        def halt(names: tuple[str, ...]) -> None:
            live = [c for c in (self.component(n) for n in names) if c is not None and c.alive]
            for c in live:
                os.kill(c.pid, signal.SIGTERM)  # type: ignore[arg-type]
            for c in live:
                reap(c, 20)

        halt(("kubelet",))
        sweep_pods(self.runtime, self.url)
        halt(("scheduler", "controller-manager", "cri"))
        halt(("apiserver",))
        halt(("etcd",))
        if Path(self.kubeconfig).exists():
            remove_nodes(self.kubeconfig, [self.node])
        for pid in list(self.state["pids"].values()):
            proc = _PROCS.pop(pid, None)
            if proc is not None:
                proc.wait(5)
        self.state["pids"] = {}
        if self.folder.exists():
            self._save()

    def status(self) -> list[dict[str, Any]]:
        return [{"component": n, "pid": self.state["pids"].get(n), "running": self.running(n)} for n in COMPONENTS]

    # ------------------------------------------------------------------ reading the real system
    def etcd_health(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.etcd_url + "/health", timeout=3) as r:
            return json.loads(r.read())

    def etcd_keys(self, prefix: str = "/registry/") -> list[str]:
        """The keys etcd holds under ``prefix`` (its v3 JSON gateway, as etcdctl get --prefix --keys-only)."""
        import base64

        from labkit.controlplane.store.etcd import _prefix_end

        body = {"key": base64.b64encode(prefix.encode()).decode(),
                "range_end": base64.b64encode(_prefix_end(prefix.encode())).decode(), "keys_only": True}
        req = urllib.request.Request(self.etcd_url + "/v3/kv/range", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            kvs = json.loads(r.read()).get("kvs") or []
        return [base64.b64decode(kv["key"]).decode() for kv in kvs]
