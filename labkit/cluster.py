"""A whole Kubernetes-shaped cluster on this machine, up and down in one call.

    with labkit.Cluster(nodes=3) as c:          # apiserver, scheduler, controller-manager, 3 kubelets
        core = c.core()                           # the official kubernetes client, configured
        print(core.list_node().items[0].status.node_info.container_runtime_version)

Every component runs as its own process (``processes=True``, the default) and they talk only
through the apiserver, exactly like a real cluster; each node's kubelet reaches its runtime
through its own CRI server socket. ``processes=False`` runs the same components on one
background thread instead (quicker to start, and a lab can look inside them).
``Cluster.connect(kubeconfig)`` attaches the same lab code to an existing cluster (kind, k3s,
minikube, a cloud) instead of starting one.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from labkit import paths
from labkit.client.kubeconfig import write_kubeconfig

# The native runtime forks inside processes that also run gRPC servers (CRI, CSI, device plugins);
# gRPC's fork handlers then hang the child. Components inherit this from the cluster's environment.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

log = logging.getLogger(__name__)


class ClusterError(Exception):
    """The cluster could not start (the message says which component and where its log is)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clusters_dir() -> Path:
    p = paths.state_dir() / "clusters"
    p.mkdir(parents=True, exist_ok=True)
    return p


@dataclass
class Component:
    name: str
    cmd: list[str]
    log: str
    pid: int | None = None
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        if not self.pid:
            return False
        try:
            os.kill(self.pid, 0)
        except OSError:
            return False
        try:  # a zombie or a recycled pid is not our component
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            return "labkit" in cmdline or "etcd" in cmdline
        except OSError:
            return False


class _OfficialClients:
    """The official ``kubernetes`` client for any cluster with a ``kubeconfig``: labs written with it
    run unchanged against labkit's cluster or a real one."""

    kubeconfig: str

    def client(self):
        """An official ``kubernetes.client.ApiClient`` for this cluster."""
        from kubernetes import config

        return config.new_client_from_config(config_file=self.kubeconfig)

    def core(self):
        from kubernetes import client

        return client.CoreV1Api(self.client())

    def apps(self):
        from kubernetes import client

        return client.AppsV1Api(self.client())


class Cluster(_OfficialClients):
    """apiserver + store, scheduler, controller-manager and N kubelets (each with its CRI server)."""

    def __init__(self, nodes: int = 3, runtime: str | None = None, store: str = "sqlite", processes: bool = True,
                 *, name: str | None = None, cri: bool = True, port: int = 0, node_grace: float = 8.0,
                 eviction_seconds: float | None = 2.0, lease_interval: float = 2.0, node_cpu: str | None = None,
                 node_memory: str | None = None, node_labels: dict[str, dict[str, str]] | None = None,
                 node_gpus: dict[str, int] | None = None, kubeconfig: str | os.PathLike | None = None,
                 keep_state: bool = False, die_with_parent: bool = True):
        if nodes < 0:
            raise ValueError("nodes must be 0 or more")
        if store not in ("memory", "sqlite", "etcd") and not store.startswith(("sqlite:", "etcd:")):
            raise ValueError(f"unknown store {store!r}: choose memory, sqlite or etcd")
        self.nodes = nodes
        self.name = name or f"lk-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.dir = clusters_dir() / self.name
        self.store_spec = store
        self.processes = processes
        self.cri = cri
        self.port = port or free_port()
        self.node_grace = node_grace
        self.eviction_seconds = eviction_seconds
        self.lease_interval = lease_interval
        self.node_cpu = node_cpu
        self.node_memory = node_memory
        self.node_labels = node_labels or {}
        self.node_gpus = node_gpus or {}
        self.keep_state = keep_state
        # components of a notebook's cluster go when the notebook's process does (kubelets then
        # remove their pods); `labkit cluster up` turns this off so its cluster outlives the command
        self.die_with_parent = die_with_parent
        self.kubeconfig = str(kubeconfig or self.dir / "kubeconfig")
        self.runtime_spec = runtime
        self.runtime_name, self.runtime_reason = self._choose_runtime(runtime)
        self.components: dict[str, Component] = {}
        self._inproc: _InProcess | None = None
        self._api = None
        self._etcd: Component | None = None
        self.started = False

    # ------------------------------------------------------------------ naming
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def node_names(self) -> list[str]:
        return [f"node-{i + 1}" for i in range(self.nodes)]

    @staticmethod
    def _choose_runtime(runtime: str | None) -> tuple[str, str]:
        if runtime:
            return runtime, f"{runtime} (asked for)"
        try:
            from labkit.runtime import choose_default

            return choose_default()
        except Exception as exc:  # noqa: BLE001 - no runtime package: still run, and say so
            return "simulated", f"simulated: no runtime backend could be chosen ({exc})"

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 60.0) -> Cluster:
        if self.started:
            return self
        remove_stale_clusters()
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "logs").mkdir(exist_ok=True)
        write_kubeconfig(self.kubeconfig, self.url, name=self.name if len(self.name) < 50 else "labkit")
        try:
            self._start_store_and_apiserver(timeout)
            if self.processes:
                self._start_processes()
            else:
                self._inproc = _InProcess(self)
                self._inproc.start()
            self.started = True
            atexit.register(self._stop_at_exit)
            self._save()
            self.wait_nodes_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _py(self, module: str, *args: str) -> list[str]:
        return [sys.executable, "-m", module, *args]

    def _spawn(self, name: str, cmd: list[str]) -> Component:
        log = str(self.dir / "logs" / f"{name}.log")
        with open(log, "ab") as f:
            proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, cwd=str(self.dir),
                                    preexec_fn=_pdeathsig(os.getpid()) if self.die_with_parent else None)
        c = Component(name, cmd, log, proc.pid, proc)
        self.components[name] = c
        return c

    def _store_url(self) -> str:
        s = self.store_spec
        if s == "sqlite":
            return f"sqlite:{self.dir / 'store.db'}"
        if s == "etcd":
            from labkit.controlplane.store.etcd_server import etcd_binary

            cport, pport = free_port(), free_port()
            data = self.dir / "etcd"
            cmd = [etcd_binary(), "--name", "lk0", "--data-dir", str(data),
                   "--listen-client-urls", f"http://127.0.0.1:{cport}",
                   "--advertise-client-urls", f"http://127.0.0.1:{cport}",
                   "--listen-peer-urls", f"http://127.0.0.1:{pport}",
                   "--initial-advertise-peer-urls", f"http://127.0.0.1:{pport}",
                   "--initial-cluster", f"lk0=http://127.0.0.1:{pport}"]
            self._etcd = self._spawn("etcd", cmd)
            _wait(lambda: _http_ok(f"http://127.0.0.1:{cport}/health"), 20, "etcd", self._etcd.log)
            return f"etcd:http://127.0.0.1:{cport}"
        return s

    def _start_store_and_apiserver(self, timeout: float) -> None:
        store = self._store_url()
        if self.processes:
            c = self._spawn("apiserver", self._py("labkit.controlplane.apiserver", "--port", str(self.port),
                                                  "--store", store))
            _wait(lambda: _http_ok(self.url + "/version") or (not c.alive and _raise(c)), timeout, "apiserver", c.log)
        else:
            from labkit.controlplane.apiserver import APIServer

            self._api = APIServer(store, port=self.port).start()

    def _node_cmds(self, node: str) -> tuple[list[str] | None, list[str]]:
        sock = str(self.dir / f"{node}-cri.sock")
        args = ["--kubeconfig", self.kubeconfig, "--node-name", node, "--lease-interval", str(self.lease_interval),
                "--cleanup-on-exit"]
        if self.node_cpu:
            args += ["--cpu", self.node_cpu]
        if self.node_memory:
            args += ["--memory", self.node_memory]
        for k, v in self.node_labels.get(node, {}).items():
            args += ["--label", f"{k}={v}"]
        if self.node_gpus.get(node):
            args += ["--gpus", str(self.node_gpus[node])]
        if self.cri:
            cri = self._py("labkit.node.cri.server", "--socket", sock, "--backend", self.runtime_name,
                           "--trace", str(self.dir / f"{node}-cri-trace.jsonl"))
            return cri, self._py("labkit.node.kubelet", *args, "--runtime", f"unix://{sock}")
        return None, self._py("labkit.node.kubelet", *args, "--runtime", self.runtime_name)

    def _start_processes(self) -> None:
        self.start_component("scheduler")
        self.start_component("controller-manager")
        for node in self.node_names():
            cri, _ = self._node_cmds(node)
            if cri:
                self.start_component(f"cri-{node}")
        for node in self.node_names():
            self.start_component(f"kubelet-{node}")

    def command_for(self, component: str) -> list[str]:
        if component == "scheduler":
            return self._py("labkit.controlplane.scheduler", "--kubeconfig", self.kubeconfig)
        if component == "controller-manager":
            args = ["--kubeconfig", self.kubeconfig, "--node-monitor-grace-period", str(self.node_grace)]
            if self.eviction_seconds is not None:
                args += ["--eviction-seconds", str(self.eviction_seconds)]
            return self._py("labkit.controlplane.controllers", *args)
        if component.startswith("cri-"):
            cri, _ = self._node_cmds(component[4:])
            if cri is None:
                raise ClusterError("this cluster runs without CRI servers")
            return cri
        if component.startswith("kubelet-"):
            return self._node_cmds(component[8:])[1]
        if component == "apiserver":
            return self.components["apiserver"].cmd
        raise ClusterError(f"unknown component {component!r}; have {sorted(self.components)}")

    def start_component(self, component: str) -> Component:
        """(Re)start one component process, e.g. after :meth:`kill`."""
        if not self.processes:
            raise ClusterError("start_component needs processes=True")
        old = self.components.get(component)
        if old is not None and old.alive:
            return old
        c = self._spawn(component, self.command_for(component))
        if component.startswith("cri-"):
            sock = Path(self.dir / f"{component[4:]}-cri.sock")
            _wait(lambda: sock.exists() or (not c.alive and _raise(c)), 30, component, c.log)
        self._save()
        return c

    def kill(self, component: str, sig: int = signal.SIGKILL) -> None:
        """Kill one component (default SIGKILL, like a crash). Its containers keep running."""
        if not self.processes:
            assert self._inproc is not None
            self._inproc.kill(component)
            return
        c = self.components.get(component)
        if c is None:
            raise ClusterError(f"no component {component!r}; have {sorted(self.components)}")
        _signal(c, sig)
        if c.proc is not None:
            c.proc.wait(10)

    def stop(self) -> None:
        """Stop everything and remove every container, sandbox, socket and file the cluster made."""
        if self._inproc is not None:
            self._inproc.stop()
            self._inproc = None
        order = ["scheduler", "controller-manager"] + [n for n in self.components if n.startswith("kubelet-")]
        for name in order:
            c = self.components.get(name)
            if c is not None and c.alive:
                _signal(c, signal.SIGTERM)
        for name in order:
            c = self.components.get(name)
            if c is not None:
                _reap(c, 20)
        self._sweep_pods()
        for c in list(self.components.values()):
            if c.alive:
                _signal(c, signal.SIGTERM)
        for c in self.components.values():
            _reap(c, 10)
        self._remove_nodes()
        if self._api is not None:
            self._api.stop()
            self._api = None
        self.components.clear()
        self.started = False
        if not self.keep_state:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _remove_nodes(self) -> None:
        """Every node's network namespace, router entry, IPAM files and plug-in sockets, removed now
        that its kubelet is gone (a SIGKILLed kubelet could not close them itself)."""
        try:
            from labkit.node.plugins import cluster_scope, remove_node
        except ImportError:
            return
        if not self.kubeconfig or not Path(self.kubeconfig).exists() or not cluster_scope(self.kubeconfig):
            return  # never started (or already stopped): no scope, so nothing of ours to name
        for node in self.node_names():
            try:
                remove_node(node, self.kubeconfig)
            except Exception as exc:  # noqa: BLE001 - keep removing the other nodes
                log.warning("removing node %s's network: %s", node, exc)

    def _stop_at_exit(self) -> None:
        if self.started and not self.keep_state:
            self.stop()

    def _sweep_pods(self) -> None:
        """Remove sandboxes a killed kubelet left behind (those labelled for this cluster's API server)."""
        try:
            import labkit.runtime as runtimes
            from labkit.node.kubelet import containers as C

            rt = runtimes.get(self.runtime_name)
        except Exception:  # noqa: BLE001 - nothing to sweep with
            return
        try:
            suffix = f"@{self.url}"
            for sb in rt.list_pod_sandboxes():
                owner = sb.labels.get(C.NODE, "")
                if not owner.endswith(suffix):
                    continue
                # the pod's network goes with its node's namespace in _remove_nodes()
                for cs in rt.list_containers(sb.id):
                    try:
                        rt.stop_container(cs.id, 1)
                        rt.remove_container(cs.id)
                    except Exception:  # noqa: BLE001
                        pass
                try:
                    rt.stop_pod_sandbox(sb.id)
                    rt.remove_pod_sandbox(sb.id)
                except Exception:  # noqa: BLE001
                    pass
                if not sb.netns_path:
                    _remove_cni_pod_netns(sb.id)
        finally:
            rt.close()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ state file (for the CLI)
    def _save(self) -> None:
        info = {"name": self.name, "url": self.url, "kubeconfig": self.kubeconfig, "nodes": self.nodes,
                "runtime": self.runtime_name, "runtime_reason": self.runtime_reason, "store": self.store_spec,
                "cri": self.cri, "processes": self.processes, "keep_state": self.keep_state, "owner_pid": os.getpid(),
                "components": {n: {"pid": c.pid, "cmd": c.cmd, "log": c.log} for n, c in self.components.items()}}
        (self.dir / "cluster.json").write_text(json.dumps(info, indent=1))

    @classmethod
    def load(cls, name: str = "default") -> Cluster:
        """The cluster ``labkit cluster up`` started (from its state file), to inspect or stop it."""
        f = clusters_dir() / name / "cluster.json"
        if not f.exists():
            raise ClusterError(f"no cluster named {name!r} is up (looked in {f.parent}); start one with 'labkit cluster up'")
        info = json.loads(f.read_text())
        c = cls(nodes=info["nodes"], runtime=info["runtime"], store=info["store"], processes=True, name=info["name"],
                cri=info["cri"], port=int(info["url"].rsplit(":", 1)[1]), kubeconfig=info["kubeconfig"])
        c.runtime_reason = info.get("runtime_reason", "")
        for n, d in info["components"].items():
            c.components[n] = Component(n, d["cmd"], d["log"], d["pid"])
        c.started = True
        return c

    # ------------------------------------------------------------------ looking inside (labs)
    @property
    def scheduler(self):
        """The in-process Scheduler (``processes=False`` only): its ``decisions`` say why each pod went where."""
        if self._inproc is None:
            raise ClusterError("the scheduler runs in its own process; use Cluster(processes=False) to look inside")
        return self._inproc.scheduler

    def decision(self, pod: str, namespace: str = "default"):
        """The scheduler's last :class:`~labkit.controlplane.scheduler.Decision` for a pod (in-process only)."""
        key = pod if "/" in pod else f"{namespace}/{pod}"
        return self.scheduler.decisions.get(key)

    def kubelet(self, node: str):
        if self._inproc is None:
            raise ClusterError("kubelets run as processes; use Cluster(processes=False) to look inside")
        return self._inproc.kubelets[node]

    def cri_trace(self, node: str) -> list[dict]:
        """Every CRI call the node's runtime answered: method, request summary, time, duration."""
        f = self.dir / f"{node}-cri-trace.jsonl"
        if not f.exists():
            return []
        return [json.loads(line) for line in f.read_text().splitlines() if line.strip()]

    def wait_nodes_ready(self, timeout: float = 60.0) -> list[str]:
        """Block until every node reports Ready=True; returns their names."""
        want = set(self.node_names())
        deadline = time.time() + timeout
        ready: set[str] = set()
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/api/v1/nodes", timeout=5) as r:
                    items = json.loads(r.read()).get("items") or []
            except OSError:
                items = []
            ready = {n["metadata"]["name"] for n in items
                     if any(c.get("type") == "Ready" and c.get("status") == "True"
                            for c in (n.get("status") or {}).get("conditions") or [])}
            if want <= ready:
                return sorted(ready)
            for c in self.components.values():
                if c.proc is not None and not c.alive:
                    raise ClusterError(f"{c.name} exited while the cluster was starting; see {c.log}:\n"
                                       + _tail(c.log))
            time.sleep(0.1)
        raise ClusterError(f"nodes not ready after {timeout:.0f}s: have {sorted(ready)}, want {sorted(want)}; "
                           f"logs in {self.dir / 'logs'}")

    def status(self) -> list[dict]:
        return [{"component": n, "pid": c.pid, "alive": c.alive, "log": c.log} for n, c in self.components.items()]

    def describe(self) -> str:
        """How to use this cluster from a shell and from Python (what ``labkit cluster up`` prints)."""
        kubectl = shutil.which("kubectl") or "kubectl"
        return "\n".join([
            f"cluster {self.name}: {self.nodes} node(s), store {self.store_spec}, runtime {self.runtime_reason}",
            f"  API server  {self.url}",
            f"  kubeconfig  {self.kubeconfig}",
            "",
            f"  export KUBECONFIG={self.kubeconfig}",
            f"  {kubectl} get nodes -o wide",
            "",
            "  python -c 'from kubernetes import client, config; "
            f"config.load_kube_config(\"{self.kubeconfig}\"); "
            "print([n.metadata.name for n in client.CoreV1Api().list_node().items])'",
            "",
            "  labkit cluster status   |   labkit cluster down",
        ])

    @staticmethod
    def connect(kubeconfig: str | os.PathLike | None = None) -> ConnectedCluster:
        """Attach to an existing cluster (kind, k3s, minikube, cloud) through its kubeconfig."""
        return ConnectedCluster(str(kubeconfig) if kubeconfig else None)


class ConnectedCluster(_OfficialClients):
    """The same ``client()/core()/apps()`` surface over someone else's cluster; stop() leaves it alone."""

    def __init__(self, kubeconfig: str | None):
        from labkit.client.kubeconfig import KubeConfig

        cfg = KubeConfig.load(kubeconfig)
        self.kubeconfig = cfg.path
        self.url = cfg.server
        self.processes = False
        self.runtime_name = "whatever that cluster runs"

    def stop(self) -> None:
        pass

    def __enter__(self) -> ConnectedCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class _InProcess:
    """Scheduler, controller-manager and kubelets as asyncio tasks on one background thread."""

    def __init__(self, cluster: Cluster):
        self.c = cluster
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=f"labkit-{cluster.name}", daemon=True)
        self.tasks: dict[str, asyncio.Task] = {}
        self.clients: list = []
        self.kubelets: dict = {}
        self.scheduler = None
        self.controllers = None
        self.cri_servers: list = []
        self.runtimes: list = []

    def call(self, coro, timeout: float = 60.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        self.thread.start()
        self.call(self._start())

    async def _client(self, agent: str):
        from labkit.client import Client

        cl = Client(self.c.kubeconfig, user_agent=agent)
        self.clients.append(cl)
        return cl

    async def _start(self) -> None:
        from labkit.controlplane.controllers.manager import ControllerManager
        from labkit.controlplane.scheduler.scheduler import Scheduler

        self.scheduler = Scheduler(await self._client("labkit-scheduler"))
        self.tasks["scheduler"] = asyncio.create_task(self.scheduler.run())
        self.controllers = ControllerManager(await self._client("labkit-controller-manager"),
                                             node_grace=self.c.node_grace, eviction_cap=self.c.eviction_seconds)
        self.tasks["controller-manager"] = asyncio.create_task(self.controllers.run())
        for node in self.c.node_names():
            await self.start_kubelet(node)

    async def start_kubelet(self, node: str) -> None:
        import labkit.runtime as runtimes
        from labkit.node.kubelet.kubelet import Kubelet, load_plugins
        from labkit.node.kubelet.nodestatus import host_capacity

        rt = await asyncio.to_thread(runtimes.get, self.c.runtime_name)
        self.runtimes.append(rt)
        if self.c.cri:
            from labkit.node.cri import RemoteRuntime, serve

            sock = str(self.c.dir / f"{node}-cri.sock")
            self.cri_servers.append(serve(rt, sock, str(self.c.dir / f"{node}-cri-trace.jsonl")))
            rt = await asyncio.to_thread(RemoteRuntime, f"unix://{sock}")
            self.runtimes.append(rt)
        cap = host_capacity()
        if self.c.node_cpu:
            cap["cpu"] = self.c.node_cpu
        if self.c.node_memory:
            cap["memory"] = self.c.node_memory
        from labkit.node.kubelet.kubelet import DeviceNotifier

        notifier = DeviceNotifier()
        opts: dict = {"kubeconfig": self.c.kubeconfig, "on_device_change": notifier}
        if self.c.node_gpus.get(node):
            opts["gpus"] = self.c.node_gpus[node]
        plugins = await asyncio.to_thread(load_plugins, node, **opts)
        k = Kubelet(await self._client(f"labkit-kubelet/{node}"), node, rt, plugins, capacity=cap,
                    labels=self.c.node_labels.get(node, {}), lease_interval=self.c.lease_interval)
        notifier.kubelet = k
        self.kubelets[node] = k
        await k.start()

    def kill(self, component: str) -> None:
        """Simulate a crash: the component stops talking to the API (containers keep running)."""
        if component.startswith("kubelet-"):
            k = self.kubelets.pop(component[8:])
            self.call(k.stop())
            return
        t = self.tasks.pop(component, None)
        if t is None:
            raise ClusterError(f"no running component {component!r}")
        self.loop.call_soon_threadsafe(t.cancel)

    def stop(self) -> None:
        if not self.thread.is_alive():
            return
        try:
            self.call(self._stop(), 120)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            for s in self.cri_servers:
                s.stop()
            for rt in self.runtimes:
                try:
                    rt.close()
                except Exception:  # noqa: BLE001
                    pass

    async def _stop(self) -> None:
        for t in self.tasks.values():
            t.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        await asyncio.gather(*(k.stop(kill_pods=True) for k in self.kubelets.values()), return_exceptions=True)
        for cl in self.clients:
            await cl.close()


def stale_clusters() -> list[Path]:
    """Folders left by notebook clusters whose process died without stop() (nothing of them runs).

    Only folders that say they were not meant to be kept, whose creating process is gone and none
    of whose component processes is alive; ``labkit cluster up`` clusters are never listed: their
    store may hold a user's objects, and ``labkit cluster down --name`` removes them.
    """
    stale = []
    for info_file in sorted(clusters_dir().glob("*/cluster.json")):
        try:
            info = json.loads(info_file.read_text())
        except (OSError, ValueError):
            continue
        if info.get("keep_state", True) or _pid_alive(info.get("owner_pid")):
            continue
        comps = [Component(n, d.get("cmd", []), d.get("log", ""), d.get("pid")) for n, d in
                 (info.get("components") or {}).items()]
        if not any(c.alive for c in comps):
            stale.append(info_file.parent)
    return stale


def remove_stale_clusters() -> list[str]:
    """Delete the folders :func:`stale_clusters` lists; returns their names."""
    removed = []
    for folder in stale_clusters():
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder.name)
    return removed


def _remove_cni_pod_netns(sandbox_id: str) -> None:
    """The namespace the CNI plugin made for a sandbox whose runtime has none (simulated): the
    killed kubelet's plugin knew it only in memory, so it is removed here by its name."""
    try:
        from labkit.node.cni.plugin import POD_NS_PREFIX
        from labkit.node.cni.topology import delete_netns
    except ImportError:
        return
    try:
        delete_netns(POD_NS_PREFIX + sandbox_id[:12])
    except Exception as exc:  # noqa: BLE001 - not there, or not root
        log.debug("pod netns of %s: %s", sandbox_id[:12], exc)


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
        return True
    except OSError:
        return False


def _pdeathsig(parent: int):
    """A preexec_fn: the child gets SIGTERM when the process that started it dies (Linux prctl)."""
    def set_it() -> None:
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)
    return set_it


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _tail(path: str, n: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def _raise(c: Component) -> bool:
    raise ClusterError(f"{c.name} exited at start; its log {c.log} ends with:\n{_tail(c.log)}")


def _wait(pred, timeout: float, what: str, log: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise ClusterError(f"{what} not ready after {timeout:.0f}s; see {log}:\n{_tail(log)}")


def _signal(c: Component, sig: int) -> None:
    if c.pid and c.alive:
        try:
            os.kill(c.pid, sig)
        except OSError:
            pass


def _reap(c: Component, timeout: float) -> None:
    deadline = time.time() + timeout
    while c.alive and time.time() < deadline:
        if c.proc is not None:
            try:
                c.proc.wait(0.1)
            except subprocess.TimeoutExpired:
                pass
        else:
            time.sleep(0.1)
    if c.alive:
        _signal(c, signal.SIGKILL)
        if c.proc is not None:
            c.proc.wait(5)
