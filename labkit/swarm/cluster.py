"""Three Docker Engines made into one swarm of managers, for a ``with`` block.

``with Swarm() as sw:`` makes the network, starts the engines at once, gives each the images it
needs by ``docker load`` (no registry: the nodes have no way out), initialises the swarm on node 1
and joins the others as managers. At the end, on an error, or through ``labkit gc`` after the
owning process was killed, everything is removed.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from labkit.swarm import leftovers, network
from labkit.swarm.engine import Engine, EngineError

_GET = ("import sys, urllib.request\n"
        "try:\n"
        "    print(urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])).read().decode().strip())\n"
        "except Exception as e:\n"
        "    print(f'no answer: {e}'); sys.exit(1)\n")


class Swarm:
    """A swarm of ``managers`` manager nodes (and ``workers`` workers) on one machine."""

    def __init__(self, managers: int = 3, workers: int = 0, images: tuple[str, ...] = ("busybox",)) -> None:
        if managers < 1 or workers < 0 or managers + workers > 9:
            raise ValueError("a labkit swarm has 1 to 9 nodes, at least one of them a manager")
        self.id = secrets.token_hex(3)
        self.folder = leftovers.swarms_dir() / self.id
        self.managers, self.workers, self.images = managers, workers, images
        self.engines = [Engine(self.id, i, self.folder / f"n{i}") for i in range(1, managers + workers + 1)]
        self.network = network.SwarmNetwork(self.id, len(self.engines))
        self.indexes = tuple(e.index for e in self.engines)
        #: host ports of the lab's gateway and mesh services (inside the nodes' own namespaces)
        self.published = (8080, 8081)

    #: three engines run (the one-node fallback, :class:`labkit.swarm.onenode.OneNodeSwarm`, says False)
    nested = True
    why_not = ""
    note = ""

    # --- life cycle -------------------------------------------------------------------
    def __enter__(self) -> Swarm:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self.folder.mkdir(parents=True)
        (self.folder / "owner.json").write_text(json.dumps({"pid": os.getpid()}))
        try:
            self.network.create()
            for e in self.engines:
                e.start()
            archives = self._archives()
            with ThreadPoolExecutor(len(self.engines)) as pool:
                list(pool.map(lambda e: self._ready(e, archives), self.engines))
            first = self.engines[0]
            first.docker("swarm", "init", "--advertise-addr", first.address, "--listen-addr", f"{first.address}:2377",
                         "--task-history-limit", "2", "--dispatcher-heartbeat", "2s")
            tokens = {role: first.docker("swarm", "join-token", "-q", role) for role in ("manager", "worker")}

            def join(e: Engine) -> None:
                role = "manager" if e.index <= self.managers else "worker"
                e.docker("swarm", "join", "--token", tokens[role], "--advertise-addr", e.address,
                         "--listen-addr", f"{e.address}:2377", f"{first.address}:2377")
            with ThreadPoolExecutor(max(1, len(self.engines) - 1)) as pool:
                list(pool.map(join, self.engines[1:]))
        except BaseException:
            self.close()
            raise

    def _archives(self) -> list[bytes]:
        from labkit.images import ImageStore
        from labkit.images.store import docker_ref

        store = ImageStore()
        out = []
        for name in self.images:
            img = store.get(name)
            out.append(store.docker_archive(img, docker_ref(img.name)))
        return out

    @staticmethod
    def _ready(e: Engine, archives: list[bytes]) -> None:
        e.wait_ready()
        for tar in archives:
            e.docker("load", "-q", stdin=tar)

    def close(self) -> None:
        """Remove everything: engines, containers, mounts, cgroups, namespaces, bridge, folder."""
        leftovers.tear_down(self.folder)

    # --- using it ---------------------------------------------------------------------
    def node(self, index: int) -> Engine:
        return self.engines[index - 1]

    def hostname(self, index: int) -> str:
        """The name ``docker node ls`` shows for node ``index``."""
        return self.node(index).name

    def docker(self, index: int, *args: str, **kw: object) -> str:
        """The docker CLI against node ``index`` (1-based)."""
        return self.node(index).docker(*args, **kw)  # type: ignore[arg-type]

    def nodes(self, via: int = 1) -> list[dict]:
        """``docker node ls`` as dicts (Hostname, Status, ManagerStatus, ...), asked of node ``via``."""
        out = self.docker(via, "node", "ls", "--format", "{{json .}}")
        return [json.loads(line) for line in out.splitlines()]

    def leader(self, via: tuple[int, ...] | None = None) -> int | None:
        """The index of the Raft leader, asked of the running managers (or those in ``via``);
        None while there is none."""
        for e in self.engines:
            if not e.running() or (via is not None and e.index not in via):
                continue
            try:
                out = e.docker("node", "ls", "--format", "{{json .}}", timeout=2)  # it hangs while there is none
                for n in (json.loads(line) for line in out.splitlines()):
                    if n.get("ManagerStatus") == "Leader":
                        return int(n["Hostname"].removeprefix("node-"))
            except EngineError:
                continue
        return None

    def stop_engine(self, index: int) -> None:
        """Node ``index`` goes down: its engine and every container on it end."""
        self.node(index).stop()

    def start_engine(self, index: int, wait: bool = True) -> None:
        """Node ``index`` comes back with its data root and rejoins the swarm by itself. Its API
        answers only once its swarm part is up (dockerd waits for Raft), so ``wait=False`` returns
        at once and leaves the waiting to the caller (poll :meth:`leader` on a running node)."""
        e = self.node(index)
        e.start()
        if wait:
            e.wait_ready()

    def tasks(self, service: str, via: int = 1) -> list[dict]:
        """The service's tasks that should be running: ``docker service ps`` as dicts."""
        out = self.docker(via, "service", "ps", service, "--no-trunc", "--filter", "desired-state=running",
                          "--format", "{{json .}}")
        return [json.loads(line) for line in out.splitlines()]

    def wait_running(self, service: str, replicas: int, via: int = 1, timeout: float = 60) -> list[dict]:
        """Poll until ``replicas`` tasks of ``service`` are Running; those tasks."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                now = [t for t in self.tasks(service, via) if t["CurrentState"].startswith("Running")]
            except EngineError:
                now = []
            if len(now) == replicas:
                return now
            if time.monotonic() > deadline:
                raise TimeoutError(f"{service}: {len(now)} of {replicas} tasks running after {timeout} s")
            time.sleep(0.3)

    def container_of(self, task: dict, timeout: float = 15) -> tuple[int, str]:
        """(node index, container ID) of a task from :meth:`tasks`; its engine may list the
        container a moment after the manager reports the task running, so this polls."""
        index = int(task["Node"].removeprefix("node-"))
        deadline = time.monotonic() + timeout
        while not (cid := self.docker(index, "ps", "-q", "--filter", f"label=com.docker.swarm.task.id={task['ID']}")):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no container for task {task['ID']} on node-{index} after {timeout} s")
            time.sleep(0.2)
        return index, cid

    def http_get(self, index: int, port: int, path: str = "/", timeout: float = 3) -> str:
        """GET ``http://<node index's address>:<port><path>`` from inside the swarm's network (the only
        place the nodes' addresses exist); the body, or ``no answer: ...``."""
        url = f"http://{self.node(index).address}:{port}{path}"
        try:
            res = network.in_node(self.id, index, sys.executable, "-c", _GET, url, str(timeout), timeout=timeout + 10)
        except subprocess.TimeoutExpired:
            return "no answer: timed out"
        return res.stdout.strip() or res.stderr.strip()

    @property
    def path(self) -> Path:
        return self.folder
