"""The kubelet: the node agent that turns pods bound to this node into running containers.

It is an ordinary API client. It registers its Node, renews its Lease in ``kube-node-lease``
(the heartbeat the node lifecycle controller watches), watches the pods whose
``spec.nodeName`` is this node, hands each to a :class:`PodWorker`, and serves container logs
on its own port for ``kubectl logs``. The runtime is reached only through
:class:`labkit.runtime.base.Runtime` — in-process, or over the CRI socket.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from pathlib import Path

from labkit import paths
from labkit.client import Client
from labkit.client.events import EventRecorder, now_micro
from labkit.client.informer import Informer, key_of
from labkit.client.pods import is_pod_terminal
from labkit.client.rest import ApiError
from labkit.errors import LabkitError
from labkit.node.kubelet import containers as C
from labkit.node.kubelet import nodestatus
from labkit.node.kubelet.nodecontext import NodeContext
from labkit.node.kubelet.plugins import NodePlugins, PluginError
from labkit.node.kubelet.podcleanup import cleanup_pod
from labkit.node.kubelet.podworker import PodRecord, PodWorker
from labkit.node.kubelet.stats import Stats
from labkit.runtime.base import ContainerState, PodSandboxStatus, Runtime

log = logging.getLogger(__name__)


class DeviceNotifier:
    """Hands device-capacity changes to a kubelet created after its plugins (set ``.kubelet`` later)."""

    def __init__(self) -> None:
        self.kubelet: Kubelet | None = None

    def __call__(self, capacity: dict | None = None) -> None:
        if self.kubelet is not None:
            self.kubelet.devices_changed(capacity)


class Kubelet:
    def __init__(
        self, client: Client, node_name: str, runtime: Runtime, plugins: NodePlugins | None = None, *,
        capacity: dict[str, str] | None = None, labels: dict[str, str] | None = None,
        taints: list[dict] | None = None, lease_interval: float = 5.0, status_interval: float = 10.0,
        serve_logs: bool = True, port: int = 0, address: str = "127.0.0.1", hollow: bool = False,
        pod_poll: float = 1.0, backoff_base: float = 2.0, backoff_max: float = 60.0, watch_pods: bool = True,
        state: Path | None = None, stats_interval: float = 1.0, stats_window: float = 5.0,
    ):
        self.client = client
        self.node_name = node_name
        self.runtime = runtime
        self.plugins = plugins or NodePlugins()
        v = runtime.version()
        self.runtime_version = f"{v.runtime_name}://{v.runtime_version}"
        self.capacity = dict(capacity or nodestatus.host_capacity())
        self.labels = labels or {}
        self.taints = taints
        self.lease_interval = lease_interval
        self.status_interval = status_interval
        self.serve_logs = serve_logs
        self.port = port
        self.address = address
        self.hollow = hollow
        self.pod_poll = pod_poll
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.state = state or paths.state_dir()
        self.events = EventRecorder(client, "kubelet", host=node_name)
        self.records: dict[str, PodRecord] = {}  # pod uid -> record
        self.workers: dict[str, asyncio.Task] = {}
        self.pods = Informer(client, "pods", field_selector=f"spec.nodeName={node_name}") if watch_pods else None
        if self.pods:
            self.pods.add_handler(self.on_pod, lambda old, new: self.on_pod(new), self.on_pod_deleted)
        self._executor = None if hollow else concurrent.futures.ThreadPoolExecutor(8, f"kubelet-{node_name}")
        self._tasks: list[asyncio.Task] = []
        self._device_resources: set[str] = set()  # extended resources a device plugin ever advertised here
        self._server = None
        self.node: dict | None = None
        #: None while the node's network is being set up (Node Ready=False, NetworkNotReady), else ""
        #: or the error that set-up hit (then pods report it themselves, as before)
        self.network_error: str | None = ""
        # sandboxes carry this label so several clusters on one host never touch each other's pods
        self.owner = f"{node_name}@{client.config.server}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self.ctx = NodeContext(node_name, self.owner, address, self.state, client, self.events, runtime, self.plugins,
                               self.call_runtime, self.sync_runtime_version, v.runtime_name, hollow=hollow,
                               pod_poll=pod_poll, backoff_base=backoff_base, backoff_max=backoff_max)
        #: cAdvisor's part: cgroup samples behind /stats/summary (metrics.k8s.io) and /metrics
        self.stats = None if hollow else Stats(self.ctx, self.records, stats_interval, stats_window)
        if self.stats is not None:
            self.ctx.probe_observer = self.stats.probe_result

    @property
    def runtime_name(self) -> str:
        return self.ctx.runtime_name

    # ------------------------------------------------------------------ runtime
    async def call_runtime(self, fn, *args, **kw):
        if self._executor is None:
            return fn(*args, **kw)
        return await asyncio.get_running_loop().run_in_executor(self._executor, lambda: fn(*args, **kw))

    async def sync_runtime_version(self) -> None:
        """Ask the runtime its name again: the CRI server behind a socket can be restarted on another
        backend while this kubelet runs, and containerIDs (``native://``, ``docker://``...) and the
        Node's containerRuntimeVersion must name the runtime that really runs the next pod."""
        try:
            v = await self.call_runtime(self.runtime.version)
        except Exception as exc:  # noqa: BLE001 - the sandbox call that follows reports the real error
            log.debug("%s: runtime version: %s", self.node_name, exc)
            return
        version = f"{v.runtime_name}://{v.runtime_version}"
        if v.runtime_name == self.runtime_name and version == self.runtime_version:
            return
        log.info("%s: runtime is now %s (was %s)", self.node_name, version, self.runtime_version)
        self.ctx.runtime_name, self.runtime_version = v.runtime_name, version
        if self.node is not None:
            try:
                await self.post_status()
            except ApiError as exc:
                log.info("%s: posting new runtime version: %s", self.node_name, exc)

    # ------------------------------------------------------------------ pods
    def on_pod(self, pod: dict) -> None:
        uid = pod["metadata"].get("uid", "")
        rec = self.records.get(uid)
        if rec is None:
            if is_pod_terminal(pod) and uid not in self.ctx.existing \
                    and not pod["metadata"].get("deletionTimestamp"):
                return  # finished before this kubelet started: nothing to run
            rec = PodRecord(key_of(pod), pod)
            if (pod.get("status") or {}).get("startTime"):
                rec.start_time = pod["status"]["startTime"]
            self.records[uid] = rec
            self.workers[uid] = asyncio.get_running_loop().create_task(self._work(rec))
        else:
            rec.pod = pod
        rec.wake.set()

    def on_pod_deleted(self, pod: dict) -> None:
        rec = self.records.get(pod["metadata"].get("uid", ""))
        if rec is not None:
            rec.deleted = True
            rec.wake.set()

    async def _work(self, rec: PodRecord) -> None:
        try:
            await PodWorker(self.ctx, rec).run()
        finally:
            self.records.pop(rec.uid, None)
            self.workers.pop(rec.uid, None)

    async def cleanup_pod(self, pod: dict, sandbox: PodSandboxStatus | None) -> None:
        """Everything a pod had on this node goes: containers, network, volumes, devices, sandbox."""
        await cleanup_pod(self.ctx, pod, sandbox)

    async def _relist(self) -> None:
        """The pod lifecycle event generator (PLEG): one ListContainers per ``pod_poll`` for the whole
        node, instead of every pod worker asking for its own containers every second.

        A pod whose containers all run steadily sleeps until something changes: a container the
        runtime now lists in another state (or not at all) wakes its worker, as do API updates.
        Workers with anything pending (starting, back-off, probes) keep their own timer."""
        while True:
            await asyncio.sleep(self.pod_poll)
            steady = [rec for rec in self.records.values() if rec.steady]
            if not steady:
                continue
            try:
                listed = {cs.id: cs.state for cs in await self.call_runtime(self.runtime.list_containers)}
            except Exception as exc:  # noqa: BLE001 - runtime away (restarting): every worker looks for itself
                log.debug("%s: relist: %s", self.node_name, exc)
                listed = {}
            for rec in steady:
                if any(listed.get(cs.id) != cs.state for cs in rec.current.values()
                       if cs.state != ContainerState.EXITED):
                    rec.wake.set()

    async def _housekeeping(self) -> None:
        """After the first list: remove sandboxes of pods that no longer exist on this node."""
        known = {p["metadata"].get("uid") for p in self.pods.cache.values()} if self.pods else set()
        for uid, sb in list(self.ctx.existing.items()):
            if uid not in known:
                self.ctx.existing.pop(uid, None)
                pod = {"metadata": {"uid": uid, "name": sb.name, "namespace": sb.namespace}}
                await self.cleanup_pod(pod, sb)

    # ------------------------------------------------------------------ node
    def node_object(self) -> dict:
        """The Node as posted: extended resources count every device in capacity, healthy ones in allocatable
        (as a real kubelet does), so an unhealthy GPU shows up as capacity > allocatable."""
        devices = self.plugins.devices
        total = getattr(devices, "total", devices.capacity)()
        # a resource whose plugin went away (crashed, its pod deleted) is posted as 0, not left out:
        # the status is a merge patch, so a key left out would keep its old count
        gone = {k: "0" for k in self._device_resources - set(total)}
        self._device_resources |= set(total)
        cap = {**self.capacity, **gone, **{k: str(v) for k, v in total.items()}}
        alloc = {**self.capacity, **gone, **{k: str(v) for k, v in devices.capacity().items()}}
        for k in total:
            alloc.setdefault(k, "0")
        ready = self.network_error is not None
        message = "kubelet is posting ready status" if ready else (
            "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
            "message:the node's CNI network is being set up")
        return nodestatus.node_object(self.node_name, capacity=cap, runtime_version=self.runtime_version,
                                      port=self.port, labels=self.labels, taints=self.taints, address=self.address,
                                      allocatable=alloc, ready=ready, message=message)

    async def register(self) -> dict:
        body = self.node_object()
        try:
            self.node = await self.client.create("nodes", body)
        except ApiError as exc:
            if exc.code != 409:
                raise
            self.node = await self.client.patch("nodes", self.node_name, {"status": body["status"]}, sub="status")
            labels = body["metadata"]["labels"]
            if any((self.node["metadata"].get("labels") or {}).get(k) != v for k, v in labels.items()):
                self.node = await self.client.patch("nodes", self.node_name, {"metadata": {"labels": labels}})
        ref = {"kind": "Node", "apiVersion": "v1", "metadata": {
            "name": self.node_name, "uid": (self.node or {}).get("metadata", {}).get("uid", self.node_name)}}
        self.events.event(ref, "Normal", "Starting", f"Starting kubelet ({self.runtime_version}).")
        return self.node

    async def post_status(self) -> None:
        body = self.node_object()
        await self.client.patch("nodes", self.node_name, {"status": body["status"]}, sub="status")

    def devices_changed(self, capacity: dict | None = None) -> None:
        """Device plugins came or went: post the Node's new capacity now, not at the next status tick.

        Called from the device manager's thread, so it hops onto the kubelet's event loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        async def safe_post() -> None:
            try:
                await self.post_status()
            except ApiError as exc:
                log.info("%s: posting new device capacity: %s", self.node_name, exc)

        def post() -> None:
            self._tasks.append(loop.create_task(safe_post()))

        loop.call_soon_threadsafe(post)

    async def renew_lease(self) -> None:
        lease = {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": self.node_name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": self.node_name, "leaseDurationSeconds": 40, "renewTime": now_micro()},
        }
        try:
            await self.client.patch("leases", self.node_name, {"spec": lease["spec"]}, "kube-node-lease")
        except ApiError as exc:
            if not exc.not_found:
                raise
            if self.node and self.node["metadata"].get("uid"):
                lease["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": self.node_name,
                                                         "uid": self.node["metadata"]["uid"]}]
            try:
                await self.client.create("leases", lease, namespace="kube-node-lease")
            except ApiError as exc2:
                if exc2.not_found:  # no kube-node-lease namespace yet
                    await self.client.create("namespaces", {"metadata": {"name": "kube-node-lease"}})
                elif exc2.code != 409:
                    raise

    async def _every(self, interval: float, fn) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await fn()
            except ApiError as exc:
                log.info("%s: %s: %s", self.node_name, fn.__name__, exc)
                if exc.not_found and fn == self.post_status:
                    try:
                        await self.register()  # someone deleted our Node: register again
                    except ApiError as exc2:
                        log.info("%s: registering again: %s", self.node_name, exc2)

    async def _until_reachable(self, fn) -> None:
        """Retry ``fn`` while the apiserver is unreachable or overloaded (5xx); other errors are real."""
        delay = 0.1
        while True:
            try:
                await fn()
                return
            except ApiError as exc:
                if exc.code < 500:
                    raise
                log.info("%s: %s: %s; retrying in %.1fs", self.node_name, fn.__name__, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    # ------------------------------------------------------------------ network
    async def _try_prepare_network(self, node: dict | None) -> bool:
        """One attempt at the node's one-time network set-up; True once there is nothing left to wait for."""
        try:
            await self.call_runtime(self.plugins.network.prepare_node, node)
        except PluginError as exc:
            if exc.reason == "NetworkNotReady":
                return False  # e.g. no podCIDR assigned yet by the node-IPAM controller: ask again shortly
            log.warning("%s: node network set-up failed (pods will report it): %s", self.node_name, exc)
            self.network_error = str(exc)
            return True
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not keep the node down forever
            log.exception("%s: node network set-up failed", self.node_name)
            self.network_error = str(exc)
            return True
        self.network_error = ""
        return True

    async def _prepare_network(self) -> None:
        """Wait for the Node's podCIDR, set the network up, then post the Node Ready.

        A real kubelet also reports NetworkNotReady until its CNI network is configured; doing the
        work here (not on the first pod) keeps it off every pod's start-up path."""
        delay = 0.02
        while True:
            try:
                node = await self.client.get("nodes", self.node_name)
            except ApiError as exc:
                log.info("%s: reading own Node for its podCIDR: %s", self.node_name, exc)
                node = None
            if node is not None and await self._try_prepare_network(node):
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        log.info("%s: node network ready%s", self.node_name, f" ({self.network_error})" if self.network_error else "")
        try:
            await self._until_reachable(self.post_status)
        except ApiError as exc:
            log.info("%s: posting Ready: %s", self.node_name, exc)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Register, start heartbeats, log server and the pod watch; returns once the first list is done."""
        self._loop = asyncio.get_running_loop()
        if self.serve_logs:
            from labkit.node.kubelet.server import start_server

            self._server, self.port = await start_server(self.ctx, self.records, self.port, self.stats)
        if not self.hollow:
            try:
                for sb in await self.call_runtime(self.runtime.list_pod_sandboxes):
                    if sb.labels.get(C.NODE) == self.owner and sb.labels.get(C.POD_UID):
                        self.ctx.existing[sb.labels[C.POD_UID]] = sb
            except LabkitError as exc:
                log.warning("cannot list existing sandboxes: %s", exc)
        if not self.hollow and not await self._try_prepare_network(None):
            self.network_error = None  # the Node is NotReady until its network is set up
        # a kubelet outlives apiserver restarts: it waits for the API to come back, as kubelet does
        await self._until_reachable(self.register)
        await self._until_reachable(self.renew_lease)
        if self.network_error is None:
            self._tasks.append(asyncio.create_task(self._prepare_network()))
        self._tasks.append(asyncio.create_task(self._every(self.lease_interval, self.renew_lease)))
        self._tasks.append(asyncio.create_task(self._every(self.status_interval, self.post_status)))
        if not self.hollow:
            self._tasks.append(asyncio.create_task(self._relist()))
        if self.stats is not None:
            self._tasks.append(asyncio.create_task(self.stats.run()))
        if self.pods:
            self._tasks.append(asyncio.create_task(self.pods.run()))
            await self.pods.wait_synced(60)
            await self._housekeeping()

    async def run(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def stop(self, kill_pods: bool = False) -> None:
        """Stop watching and heartbeating; containers keep running unless ``kill_pods`` (as a real kubelet)."""
        self._loop = None  # no more device-change posts
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        workers = list(self.workers.values())
        for t in workers:
            t.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if kill_pods:
            for sb in await self.call_runtime(self.runtime.list_pod_sandboxes):
                if sb.labels.get(C.NODE) == self.owner:
                    await self.cleanup_pod({"metadata": {"uid": sb.labels.get(C.POD_UID, ""), "name": sb.name,
                                                         "namespace": sb.namespace}}, sb)
        if self._server is not None:
            await self._server.cleanup()
            self._server = None
        await self.events.flush()
        if self._executor is not None:
            self._executor.shutdown(wait=False)
        close = getattr(self.plugins, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # noqa: BLE001 - stopping anyway
                log.exception("closing node plugins")
