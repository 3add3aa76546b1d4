"""The one-node fallback: swarm mode on the host's own Docker Engine, for hosts where nested
engines cannot start (no network namespaces, a kernel or a container that refuses a second
``dockerd``), or where ``LABKIT_SWARM_NESTED=0`` asks for it.

:class:`OneNodeSwarm` answers the same calls as :class:`~labkit.swarm.cluster.Swarm` that one
node can answer (``docker``, ``tasks``, ``wait_running``, ``container_of``, ``http_get`` ...), so
a lab runs the same cells on either and asks ``sw.nested`` before a part that needs three nodes.
``sw.why_not`` keeps the error that ruled out the nested engines, so the lab can say why.

Swarm mode is turned on with :class:`labkit.runtime.swarm.one_node_swarm` (loopback, marked for
``labkit gc``); a swarm the host was already in is used and left as it was found, less what the
lab added.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from labkit import paths
from labkit.swarm.cluster import Swarm
from labkit.swarm.engine import EngineError

#: set to 0 to skip the nested engines and run the one-node fallback
NESTED_ENV = "LABKIT_SWARM_NESTED"

#: what one node cannot show, said to the reader beside the output
NOT_SHOWN = ("the routing mesh answering on a node with no task (there is no other node)",
             "placement across nodes (the constraint can only match or miss the one node)",
             "Raft quorum loss and recovery (one manager: stopping it stops the whole swarm)",
             "backup of a manager's state (it needs the engine stopped: here that is the host's Docker)",
             "disaster recovery with docker swarm init --force-new-cluster (the same reason)")


def onenode_dir() -> Path:
    """Where the fallback keeps each run's work files (``labkit gc`` removes those of dead owners)."""
    return paths.state_dir() / "swarm-onenode"


def _free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class HostEngine:
    """The host's Docker Engine, seen through the calls the lab makes of a nested one."""

    root: Path
    index: int = 1
    address: str = "127.0.0.1"
    netns: str = "(the host's)"

    @property
    def name(self) -> str:
        return socket.gethostname()

    @property
    def data_root(self) -> Path:
        return Path(self.docker("info", "--format", "{{.DockerRootDir}}"))

    def running(self) -> bool:
        return True

    def docker(self, *args: str, check: bool = True, timeout: float = 60, stdin: bytes | None = None) -> str:
        """Run the docker CLI against the host's engine; its stdout (raises :class:`EngineError`)."""
        try:
            res = subprocess.run(["docker", *args], input=stdin, capture_output=True, timeout=timeout,
                                 env={**os.environ, "DOCKER_CLI_HINTS": "false"})
        except subprocess.TimeoutExpired as exc:
            raise EngineError(f"host: docker {' '.join(args)}: no answer in {timeout} s") from exc
        except OSError as exc:
            raise EngineError(f"host: the docker CLI cannot run: {exc}") from exc
        out, err = res.stdout.decode(errors="replace").strip(), res.stderr.decode(errors="replace").strip()
        if check and res.returncode != 0:
            raise EngineError(f"host: docker {' '.join(args)}: {err or out}")
        return out


@dataclass
class OneNodeSwarm:
    """A one-manager swarm on the host's Docker Engine, with the same calls as :class:`Swarm`."""

    why_not: str = ""  # why the nested engines did not run (dockerd's own error, or the setting)
    images: tuple[str, ...] = ("busybox",)
    nested: bool = False
    id: str = field(default_factory=lambda: secrets.token_hex(3))

    def __post_init__(self) -> None:
        self.folder = onenode_dir() / self.id
        self.engines = [HostEngine(self.folder)]
        self.indexes = (1,)
        #: host ports for the lab's gateway and mesh services: free ones, not 8080/8081 of a busy host
        self.published = (_free_port(), _free_port())

    # --- life cycle -------------------------------------------------------------------
    def __enter__(self) -> OneNodeSwarm:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        from labkit.images import ImageStore
        from labkit.runtime.swarm import one_node_swarm

        engine = self.engines[0]
        engine.docker("info", "--format", "{{.ServerVersion}}", timeout=20)  # a plain error if it is down
        self.folder.mkdir(parents=True)
        (self.folder / "owner.json").write_text(json.dumps({"pid": os.getpid()}))  # for labkit gc
        self._mode = one_node_swarm()
        try:
            self._mode.__enter__()
        except subprocess.CalledProcessError as exc:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise EngineError(f"host: docker swarm init failed: {(exc.stderr or '').strip()}") from exc
        self._before = self._owned()
        store = ImageStore()
        for name in self.images:
            store.export_to_docker(name)

    def _owned(self) -> dict[str, set[str]]:
        """Stacks, services and secrets on the engine now (so close removes only what came later)."""
        d = self.engines[0].docker
        return {"stack": set(d("stack", "ls", "--format", "{{.Name}}", check=False).split()),
                "service": set(d("service", "ls", "-q", check=False).split()),
                "secret": set(d("secret", "ls", "-q", check=False).split())}

    def close(self) -> None:
        """Remove what the lab made: its stacks, services and secrets, then swarm mode if it was ours."""
        mode = getattr(self, "_mode", None)
        if mode is not None:
            d = self.engines[0].docker
            now, before = self._owned(), self._before
            for stack in sorted(now["stack"] - before["stack"]):
                d("stack", "rm", stack, check=False)
            for kind in ("service", "secret"):
                left = sorted(set(d(kind, "ls", "-q", check=False).split()) - before[kind])
                if left:
                    d(kind, "rm", *left, check=False)
            mode.__exit__(None, None, None)
            self._mode = None
        shutil.rmtree(self.folder, ignore_errors=True)

    # --- using it ---------------------------------------------------------------------
    def node(self, index: int) -> HostEngine:
        return self.engines[index - 1]

    def hostname(self, index: int) -> str:
        """The name ``docker node ls`` shows for node ``index``."""
        return self.node(index).name

    def docker(self, index: int, *args: str, **kw: object) -> str:
        return self.node(index).docker(*args, **kw)  # type: ignore[arg-type]

    def nodes(self, via: int = 1) -> list[dict]:
        return Swarm.nodes(self, via)  # type: ignore[arg-type]

    def leader(self, via: tuple[int, ...] | None = None) -> int | None:
        return 1

    def tasks(self, service: str, via: int = 1) -> list[dict]:
        return Swarm.tasks(self, service, via)  # type: ignore[arg-type]

    def wait_running(self, service: str, replicas: int, via: int = 1, timeout: float = 60) -> list[dict]:
        return Swarm.wait_running(self, service, replicas, via, timeout)  # type: ignore[arg-type]

    def container_of(self, task: dict, timeout: float = 15) -> tuple[int, str]:
        deadline = time.monotonic() + timeout
        while not (cid := self.docker(1, "ps", "-q", "--filter", f"label=com.docker.swarm.task.id={task['ID']}")):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no container for task {task['ID']} after {timeout} s")
            time.sleep(0.2)
        return 1, cid

    def http_get(self, index: int, port: int, path: str = "/", timeout: float = 3) -> str:
        """GET ``http://127.0.0.1:<port><path>`` on the host; the body, or ``no answer: ...``."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as res:
                return res.read().decode().strip()
        except Exception as exc:  # noqa: BLE001 - the answer is the error, as for a nested node
            return f"no answer: {exc}"

    def not_shown(self) -> str:
        """The parts one node cannot show, and why the lab runs on one node."""
        lines = [f"  - {part}" for part in NOT_SHOWN]
        return (f"One node only: {self.why_not}\nNot shown here:\n" + "\n".join(lines))

    @property
    def note(self) -> str:
        """What a result recorded from this run must carry: that it came from one node."""
        return " [one-node fallback on the host's Docker Engine; nested engines did not run]"


def start_swarm(managers: int = 3, images: tuple[str, ...] = ("busybox",)) -> Swarm | OneNodeSwarm:
    """A started swarm: ``managers`` nested engines where the host allows them, else one node on the
    host's Docker Engine whose ``why_not`` says what stopped the nested ones."""
    from labkit.swarm.hostcheck import host_allows

    if os.environ.get(NESTED_ENV, "1").strip().lower() in ("0", "no", "false", "off"):
        why = f"{NESTED_ENV}={os.environ[NESTED_ENV]} asks for the one-node fallback"
    elif not (host := host_allows()).multi_node:
        why = "nested engines need root, ip and dockerd: " + "; ".join(
            line for line in host.lines() if line.endswith("NO"))
    else:
        sw = Swarm(managers=managers, images=images)
        try:
            sw.start()
            return sw
        except (EngineError, RuntimeError, OSError) as exc:
            why = f"the nested engines could not start: {exc}"
    one = OneNodeSwarm(why_not=why, images=images)
    try:
        one.start()
    except EngineError as exc:
        raise EngineError(f"no swarm can run here: {why}; and the one-node fallback could not start either: "
                          f"{exc}") from exc
    return one

