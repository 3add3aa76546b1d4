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

import atexit
import json
import logging
import os
import shutil
import signal
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from labkit.client.conditions import is_ready
from labkit.client.kubeconfig import write_kubeconfig
from labkit.cluster import identities, statefile
from labkit.cluster.cleanup import remove_nodes, remove_stale_clusters, sweep_pods
from labkit.cluster.gpuplugin import NAME as GPU_PLUGIN_NAME
from labkit.cluster.gpuplugin import NAMESPACE as GPU_PLUGIN_NAMESPACE
from labkit.cluster.gpuplugin import RESOURCE as GPU_RESOURCE
from labkit.cluster.gpuplugin import daemonset_runs_here, install_gpu_plugin
from labkit.cluster.identities import Identities
from labkit.cluster.inprocess import InProcess
from labkit.cluster.statefile import clusters_dir
from labkit.cluster.storagedefaults import install_storage_defaults
from labkit.cluster.supervisor import (
    ClusterError,
    Component,
    free_port,
    http_ok,
    raise_exited,
    reap,
    send_signal,
    spawn,
    tail,
    wait_for,
)

if TYPE_CHECKING:
    from labkit.node.assembly import NodeConfig

log = logging.getLogger(__name__)


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
                 node_gpus: dict[str, int] | None = None, gpus: int = 0, scoring_strategy: str = "LeastAllocated",
                 max_requests_inflight: int = 400, hpa_sync_period: float = 15.0,
                 hpa_downscale_stabilization: float = 300.0,
                 kubeconfig: str | os.PathLike | None = None, keep_state: bool = False, die_with_parent: bool = True,
                 secure: bool = False, tls_hosts: list[str] | None = None, bind: str = "127.0.0.1"):
        if nodes < 0:
            raise ValueError("nodes must be 0 or more")
        from labkit.controlplane.scheduler.plugins import SCORING_STRATEGIES

        if scoring_strategy not in SCORING_STRATEGIES:
            raise ValueError(f"unknown scoring_strategy {scoring_strategy!r}: choose {', '.join(SCORING_STRATEGIES)}")
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
        # gpus=N: N simulated nvidia.com/gpu on every node, from the sample plugin run as a DaemonSet
        # (node_gpus: a per-node count, from a plugin started inside those kubelets)
        self.gpus = gpus
        self.scoring_strategy = scoring_strategy  # the scheduler's NodeResourcesFit strategy (pack or spread)
        self.max_requests_inflight = max_requests_inflight  # the apiserver's limit (kube-apiserver's default; 0: none)
        # the HorizontalPodAutoscaler controller's period and scale-down window (kube's defaults: 15 s, 300 s)
        self.hpa_sync_period = hpa_sync_period
        self.hpa_downscale_stabilization = hpa_downscale_stabilization
        # Prometheus /metrics of the scheduler and controller-manager (the apiserver and kubelets serve theirs
        # on their own ports); see metrics_urls()
        self.metrics_ports = {"scheduler": free_port(), "controller-manager": free_port()}
        self.gpu_plugin_daemonset = False  # set at start: can this host run the plugin as a DaemonSet pod?
        self.device_plugins = ""  # which way the GPU plugin runs, for describe() and `cluster status`
        self.keep_state = keep_state
        # components of a notebook's cluster go when the notebook's process does (kubelets then
        # remove their pods); `labkit cluster up` turns this off so its cluster outlives the command
        self.die_with_parent = die_with_parent
        self.kubeconfig = str(kubeconfig or self.dir / "kubeconfig")
        self.runtime_spec = runtime
        self.runtime_name, self.runtime_reason = self._choose_runtime(runtime)
        # secure=True: TLS with the cluster's own CA, a token per user and component, Node,RBAC
        # authorization (see identities.py); tls_hosts: more names/addresses the serving certificate covers;
        # bind: the apiserver's listening address (any other than loopback needs secure=True)
        from labkit.controlplane.apiserver.auth.setup import loopback

        if not loopback(bind) and not secure:
            raise ValueError(f"an apiserver listening on {bind} needs secure=True (TLS, tokens and RBAC): "
                             "otherwise anyone who can reach that address could do anything to the cluster")
        self.secure = secure
        self.bind = bind
        self.tls_hosts = list(tls_hosts or []) + ([bind] if bind not in ("127.0.0.1", "0.0.0.0", "::") else [])
        self.identities: Identities | None = Identities(self.dir / "pki", self.url) if secure else None
        self.component_kubeconfigs: dict[str, str] = {}
        self.components: dict[str, Component] = {}
        self._inproc: InProcess | None = None
        self._api = None
        self._etcd: Component | None = None
        self.store_url = ""  # the apiserver's store URL once started (sqlite:PATH, etcd:URL or memory)
        self.started = False

    # ------------------------------------------------------------------ naming
    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.bind in ("0.0.0.0", "::") else self.bind
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.secure else 'http'}://{host}:{self.port}"

    def node_names(self) -> list[str]:
        return [f"node-{i + 1}" for i in range(self.nodes)]

    @staticmethod
    def _choose_runtime(runtime: str | None) -> tuple[str, str]:
        if runtime:
            return runtime, f"{runtime} (asked for)"
        from labkit.runtime import choose_default

        try:
            return choose_default()
        except Exception as exc:  # noqa: BLE001 - no backend works here: still run, and say so
            return "simulated", f"simulated: no runtime backend could be chosen ({exc})"

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 60.0) -> Cluster:
        if self.started:
            return self
        remove_stale_clusters()
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "logs").mkdir(exist_ok=True)
        try:
            self._write_kubeconfigs()
            self._start_store_and_apiserver(timeout)
            install_storage_defaults(self.kubeconfig)  # the default StorageClass, as kind and minikube ship
            as_daemonset = self._place_gpu_plugin()
            if self.processes:
                self._start_processes()
            else:
                nodes = self.node_names()
                self._inproc = InProcess(
                    self.name, self.kubeconfig, self.runtime_name, [self.node_config(n) for n in nodes],
                    node_grace=self.node_grace, eviction_seconds=self.eviction_seconds,
                    cri_files={n: (str(self.cri_socket(n)), str(self.cri_trace_file(n))) for n in nodes}
                    if self.cri else None, scoring_strategy=self.scoring_strategy,
                    hpa=(self.hpa_sync_period, self.hpa_downscale_stabilization), metrics_ports=self.metrics_ports)
                self._inproc.start()
            self.started = True
            atexit.register(self._stop_at_exit)
            self._save()
            self.wait_nodes_ready(timeout)
            if as_daemonset:
                install_gpu_plugin(self.kubeconfig, self.gpus, self.node_names(), timeout=max(timeout, 90.0))
        except BaseException:
            self.stop()
            raise
        return self

    def _write_kubeconfigs(self) -> None:
        """The admin's kubeconfig; on a secure cluster also the CA, the tokens and each component's kubeconfig."""
        name = self.name if len(self.name) < 50 else "labkit"
        ids = self.identities
        if ids is None:
            write_kubeconfig(self.kubeconfig, self.url, name=name)
            return
        ids.create(self.tls_hosts)
        user, groups = identities.ADMIN
        ids.write_kubeconfig(self.kubeconfig, user, ids.add_user(user, groups), cluster_name=name)
        self.component_kubeconfigs = {
            "scheduler": ids.component_kubeconfig("scheduler", *identities.SCHEDULER),
            "controller-manager": ids.component_kubeconfig("controller-manager", *identities.CONTROLLER_MANAGER),
            **{f"kubelet-{n}": ids.component_kubeconfig(f"kubelet-{n}", *identities.node_user(n))
               for n in self.node_names()}}

    def _component_kubeconfig(self, component: str) -> str:
        return self.component_kubeconfigs.get(component, self.kubeconfig)

    def add_user(self, name: str, groups: list[str] | tuple[str, ...] = ()) -> str:
        """A new bearer token for user ``name`` in ``groups`` (secure clusters); works at once, no restart.

        What the user may do comes from RBAC: bind a role to ``name`` (or to one of its groups).
        """
        if self.identities is None:
            raise ClusterError("add_user needs a secure cluster: labkit.Cluster(secure=True)")
        return self.identities.add_user(name, groups)

    def write_kubeconfig(self, path: str | os.PathLike, user: str, token: str, namespace: str = "default") -> Path:
        """A kubeconfig for one user of this secure cluster (its CA embedded, the token, a default namespace)."""
        if self.identities is None:
            raise ClusterError("write_kubeconfig needs a secure cluster: labkit.Cluster(secure=True)")
        return self.identities.write_kubeconfig(path, user, token, namespace,
                                                cluster_name=self.name if len(self.name) < 50 else "labkit")

    def _ssl_context(self):  # noqa: ANN202 - ssl.SSLContext | None
        return self.identities.ssl_context() if self.identities is not None else None

    def api_get(self, path: str) -> dict:
        """GET as the admin (the kubeconfig's token on a secure cluster), as JSON."""
        headers = {}
        if self.identities is not None:
            from labkit.client.kubeconfig import KubeConfig

            headers["Authorization"] = f"Bearer {KubeConfig.load(self.kubeconfig).token}"
        req = urllib.request.Request(self.url + path, headers=headers)
        with urllib.request.urlopen(req, timeout=5, context=self._ssl_context()) as r:
            return json.loads(r.read())

    def _place_gpu_plugin(self) -> bool:
        """For ``gpus=N``: True when the plugin will run as a DaemonSet; otherwise start it in every
        kubelet and log the one line that says why."""
        if not self.gpus:
            return False
        ok, why = daemonset_runs_here(self.runtime_name)
        self.gpu_plugin_daemonset = ok
        if ok:
            self.device_plugins = (f"{self.gpus} x {GPU_RESOURCE} per node (simulated), from DaemonSet "
                                   f"{GPU_PLUGIN_NAMESPACE}/{GPU_PLUGIN_NAME}")
            return True
        for n in self.node_names():
            self.node_gpus.setdefault(n, self.gpus)
        self.device_plugins = (f"{self.gpus} x {GPU_RESOURCE} per node, from the sample plugin inside each kubelet, "
                               f"not a DaemonSet: {why}")
        log.warning("GPU device plugin: %s", self.device_plugins)
        return False

    def _py(self, module: str, *args: str) -> list[str]:
        return [sys.executable, "-m", module, *args]

    def _spawn(self, name: str, cmd: list[str]) -> Component:
        c = spawn(name, cmd, str(self.dir / "logs" / f"{name}.log"), str(self.dir), self.die_with_parent)
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
            wait_for(lambda: http_ok(f"http://127.0.0.1:{cport}/health"), 20, "etcd", self._etcd.log)
            return f"etcd:http://127.0.0.1:{cport}"
        return s

    def _start_store_and_apiserver(self, timeout: float) -> None:
        store = self.store_url = self._store_url()  # what `labkit backup create` snapshots
        if self.processes:
            secure = self.identities.apiserver_args() if self.identities is not None else []
            c = self._spawn("apiserver", self._py("labkit.controlplane.apiserver", "--port", str(self.port),
                                                  "--bind", self.bind,
                                                  "--store", store, "--max-requests-inflight",
                                                  str(self.max_requests_inflight), *secure))
            ctx = self._ssl_context()
            wait_for(lambda: http_ok(self.url + "/readyz", ctx) or (not c.alive and raise_exited(c)), timeout,
                     "apiserver", c.log)
        else:
            from labkit.controlplane.apiserver import APIServer

            ids = self.identities
            auth = {} if ids is None else {
                "tls": ids.tls, "token_file": ids.token_file, "authorization_mode": "Node,RBAC",
                "service_account_key_file": ids.sa_key_file}
            self._api = APIServer(store, host=self.bind, port=self.port, max_requests_inflight=self.max_requests_inflight,
                                  **auth).start()

    def cri_socket(self, node: str) -> Path:
        return self.dir / f"{node}-cri.sock"

    def cri_trace_file(self, node: str) -> Path:
        return self.dir / f"{node}-cri-trace.jsonl"

    def node_config(self, node: str) -> NodeConfig:
        """What ``node`` is, whichever way it runs: a process renders it as its command line."""
        from labkit.node.assembly import NodeConfig

        runtime = f"unix://{self.cri_socket(node)}" if self.cri else self.runtime_name
        return NodeConfig(node, self._component_kubeconfig(f"kubelet-{node}"), runtime, cpu=self.node_cpu, memory=self.node_memory,
                          labels=dict(self.node_labels.get(node, {})), lease_interval=self.lease_interval,
                          gpus=self.node_gpus.get(node, 0), cleanup_on_exit=True)

    def _cri_cmd(self, node: str) -> list[str]:
        return self._py("labkit.node.cri.server", "--socket", str(self.cri_socket(node)), "--backend", self.runtime_name,
                        "--trace", str(self.cri_trace_file(node)))

    def _start_processes(self) -> None:
        self.start_component("scheduler")
        self.start_component("controller-manager")
        if self.cri:
            for node in self.node_names():
                self.start_component(f"cri-{node}")
        for node in self.node_names():
            self.start_component(f"kubelet-{node}")

    def command_for(self, component: str) -> list[str]:
        if component == "scheduler":
            return self._py("labkit.controlplane.scheduler", "--kubeconfig", self._component_kubeconfig("scheduler"),
                            "--scoring-strategy", self.scoring_strategy,
                            "--metrics-port", str(self.metrics_ports["scheduler"]))
        if component == "controller-manager":
            args = ["--kubeconfig", self._component_kubeconfig("controller-manager"),
                    "--node-monitor-grace-period", str(self.node_grace),
                    "--hpa-sync-period", str(self.hpa_sync_period),
                    "--hpa-downscale-stabilization", str(self.hpa_downscale_stabilization),
                    "--metrics-port", str(self.metrics_ports["controller-manager"])]
            if self.eviction_seconds is not None:
                args += ["--eviction-seconds", str(self.eviction_seconds)]
            return self._py("labkit.controlplane.controllers", *args)
        if component.startswith("cri-"):
            if not self.cri:
                raise ClusterError("this cluster runs without CRI servers")
            return self._cri_cmd(component[4:])
        if component.startswith("kubelet-"):
            return self.node_config(component[8:]).command()
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
            sock = self.cri_socket(component[4:])
            wait_for(lambda: sock.exists() or (not c.alive and raise_exited(c)), 30, component, c.log)
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
        send_signal(c, sig)
        if c.proc is not None:
            c.proc.wait(10)

    def power_off(self, node: str) -> None:
        """Take a node away as a power cut would: nothing tells the apiserver, and its pods stop answering.

        Unlike :meth:`kill` of a kubelet (whose containers keep running), the node's pods go too.
        The node stays in the API until the node lifecycle controller notices its Lease stopped."""
        if self._inproc is None:
            raise ClusterError("power_off needs Cluster(processes=False); for a process cluster, "
                               "labkit.chaos's node-down stops a kubelet (its containers keep running)")
        self._inproc.power_off(node)

    def stop(self) -> None:
        """Stop everything and remove every container, sandbox, socket and file the cluster made."""
        if self._inproc is not None:
            self._inproc.stop()
            self._inproc = None
        order = ["scheduler", "controller-manager"] + [n for n in self.components if n.startswith("kubelet-")]
        for name in order:
            c = self.components.get(name)
            if c is not None and c.alive:
                send_signal(c, signal.SIGTERM)
        for name in order:
            c = self.components.get(name)
            if c is not None:
                reap(c, 20)
        sweep_pods(self.runtime_name, self.url)
        for c in list(self.components.values()):
            if c.alive:
                send_signal(c, signal.SIGTERM)
        for c in self.components.values():
            reap(c, 10)
        remove_nodes(self.kubeconfig, self.node_names())
        if self._api is not None:
            self._api.stop()
            self._api = None
        self.components.clear()
        self.started = False
        if not self.keep_state:
            if self.identities is not None and self.identities.ca_file.exists():  # the CA data's file, if read
                from labkit.client.kubeconfig import data_file

                Path(data_file(self.identities.ca_file.read_bytes())).unlink(missing_ok=True)
            shutil.rmtree(self.dir, ignore_errors=True)

    def _stop_at_exit(self) -> None:
        if self.started and not self.keep_state:
            self.stop()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ state file (for the CLI)
    def _save(self) -> None:
        statefile.save(self.dir, {
            "name": self.name, "url": self.url, "kubeconfig": self.kubeconfig, "nodes": self.nodes,
            "runtime": self.runtime_name, "runtime_reason": self.runtime_reason, "store": self.store_spec,
            "cri": self.cri, "processes": self.processes, "keep_state": self.keep_state,
            "device_plugins": self.device_plugins, "secure": self.secure, "bind": self.bind,
            "metrics_ports": self.metrics_ports,
            "store_url": self.store_url}, self.components)

    @classmethod
    def load(cls, name: str = "default") -> Cluster:
        """The cluster ``labkit cluster up`` started (from its state file), to inspect or stop it."""
        info = statefile.read(name)
        c = cls(nodes=info["nodes"], runtime=info["runtime"], store=info["store"], processes=True, name=info["name"],
                cri=info["cri"], port=int(info["url"].rsplit(":", 1)[1]), kubeconfig=info["kubeconfig"],
                secure=bool(info.get("secure")), bind=info.get("bind", "127.0.0.1"))
        c.runtime_reason = info.get("runtime_reason", "")
        c.device_plugins = info.get("device_plugins", "")
        c.metrics_ports = info.get("metrics_ports", {})
        c.store_url = info.get("store_url", "")
        c.components.update(statefile.components(info))
        if c.identities is not None:  # restarted components keep their own identities
            for f in (c.identities.dir / "kubeconfigs").glob("*.kubeconfig"):
                c.component_kubeconfigs[f.name.removesuffix(".kubeconfig")] = str(f)
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
        f = self.cri_trace_file(node)
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
                items = self.api_get("/api/v1/nodes").get("items") or []
            except (OSError, ValueError):
                items = []
            ready = {n["metadata"]["name"] for n in items if is_ready(n)}
            if want <= ready:
                return sorted(ready)
            for c in self.components.values():
                if c.proc is not None and not c.alive:
                    raise ClusterError(f"{c.name} exited while the cluster was starting; see {c.log}:\n"
                                       + tail(c.log))
            time.sleep(0.1)
        raise ClusterError(f"nodes not ready after {timeout:.0f}s: have {sorted(ready)}, want {sorted(want)}; "
                           f"logs in {self.dir / 'logs'}")

    def metrics_urls(self) -> dict[str, str]:
        """Where each component serves Prometheus ``/metrics``: the apiserver, scheduler,
        controller-manager, and every kubelet (found from its Node's kubelet endpoint)."""
        urls = {"apiserver": self.url + "/metrics"}
        urls.update({c: f"http://127.0.0.1:{p}/metrics" for c, p in self.metrics_ports.items()})
        try:
            with urllib.request.urlopen(self.url + "/api/v1/nodes", timeout=5) as r:
                items = json.loads(r.read()).get("items") or []
        except OSError:
            items = []
        for n in items:
            port = (((n.get("status") or {}).get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
            if port:
                urls[f"kubelet-{n['metadata']['name']}"] = f"http://127.0.0.1:{port}/metrics"
        return urls

    def status(self) -> list[dict]:
        return [{"component": n, "pid": c.pid, "alive": c.alive, "log": c.log} for n, c in self.components.items()]

    def describe(self) -> str:
        """How to use this cluster from a shell and from Python (what ``labkit cluster up`` prints)."""
        kubectl = shutil.which("kubectl") or "kubectl"
        return "\n".join([
            f"cluster {self.name}: {self.nodes} node(s), store {self.store_spec}, runtime {self.runtime_reason}",
            f"  API server  {self.url}",
            f"  kubeconfig  {self.kubeconfig}",
            *([f"  GPUs        {self.device_plugins}"] if self.device_plugins else []),
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


