"""The kubelet's side of device plugins: the Registration service and one client per plugin.

The protocol (``v1beta1``), as a real kubelet runs it:

1. the kubelet serves ``Registration`` on ``<dir>/kubelet.sock``;
2. a plugin starts its own ``DevicePlugin`` server on ``<dir>/<endpoint>`` and calls
   ``Register(version, endpoint, resource_name, options)``;
3. the kubelet dials the plugin back and opens ``ListAndWatch``: a stream that sends the full
   device list now and again whenever a device changes health;
4. healthy devices become the node's capacity for that extended resource (``nvidia.com/gpu: 2``);
5. before a container that asks for N of them starts, the kubelet picks N free healthy devices
   and calls ``Allocate``; the answer (environment variables, device nodes, mounts) goes into the
   container's config.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from labkit.client import quantity
from labkit.node.deviceplugin import api_pb2 as pb
from labkit.node.deviceplugin import api_pb2_grpc as pb_grpc
from labkit.node.kubelet.plugins import DeviceAllocation, DevicePlugins, PluginError
from labkit.runtime.base import Device, Mount

log = logging.getLogger(__name__)

API_VERSION = "v1beta1"
KUBELET_SOCKET = "kubelet.sock"
HEALTHY, UNHEALTHY = "Healthy", "Unhealthy"


@dataclass
class _Endpoint:
    """One registered plugin: its channel, options and the devices its stream last reported."""

    resource: str
    socket: str
    channel: grpc.Channel
    stub: pb_grpc.DevicePluginStub
    options: pb.DevicePluginOptions
    devices: dict[str, str] = field(default_factory=dict)  # device id -> health
    stream: object = None


class _Registration(pb_grpc.RegistrationServicer):
    def __init__(self, manager: DeviceManager):
        self.manager = manager

    def Register(self, request, context):
        if request.version != API_VERSION:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"device plugin API version {request.version!r} is not supported; use {API_VERSION!r}")
        if "/" not in request.resource_name:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"resource name {request.resource_name!r} must be extended (vendor-domain/resource)")
        try:
            self.manager._connect(request.resource_name, request.endpoint, request.options)
        except grpc.RpcError as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"cannot reach plugin at {request.endpoint}: {exc.details()}")
        return pb.Empty()


class DeviceManager(DevicePlugins):
    """Registration server + ListAndWatch bookkeeping + Allocate, for one node."""

    def __init__(self, plugin_dir: str | os.PathLike, on_change: Callable[[dict[str, int]], None] | None = None):
        self.dir = Path(plugin_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.on_change = on_change
        self._endpoints: dict[str, _Endpoint] = {}
        # pod uid -> container name -> resource -> device ids (a restarted container keeps its devices)
        self._allocated: dict[str, dict[str, dict[str, list[str]]]] = {}
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        #: protocol events, newest last: ("Register", "nvidia.com/gpu") ... for labs and tests
        self.events: list[tuple[str, str]] = []
        sock = self.dir / KUBELET_SOCKET
        if sock.exists():
            sock.unlink()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        pb_grpc.add_RegistrationServicer_to_server(_Registration(self), self._server)
        self._server.add_insecure_port(f"unix:{sock}")
        self._server.start()

    @property
    def socket(self) -> str:
        return str(self.dir / KUBELET_SOCKET)

    # --- plugin connections ---------------------------------------------
    def _connect(self, resource: str, endpoint: str, options: pb.DevicePluginOptions) -> None:
        path = self.dir / endpoint
        channel = grpc.insecure_channel(f"unix:{path}")
        grpc.channel_ready_future(channel).result(timeout=5)
        ep = _Endpoint(resource, str(path), channel, pb_grpc.DevicePluginStub(channel), options)
        with self._lock:
            old = self._endpoints.pop(resource, None)
            self._endpoints[resource] = ep
            self.events.append(("Register", f"{resource} at {endpoint}"))
        if old:  # a plugin that re-registers (restarted) replaces its old connection
            old.channel.close()
        threading.Thread(target=self._watch, args=(ep,), daemon=True, name=f"listandwatch-{resource}").start()

    def _watch(self, ep: _Endpoint) -> None:
        """Consume ListAndWatch until the plugin goes away; then its devices count as gone."""
        try:
            ep.stream = ep.stub.ListAndWatch(pb.Empty())
            for resp in ep.stream:
                with self._lock:
                    ep.devices = {d.ID: d.health for d in resp.devices}
                    healthy = sum(h == HEALTHY for h in ep.devices.values())
                    self.events.append(("ListAndWatch", f"{ep.resource}: {len(ep.devices)} devices, {healthy} healthy"))
                    self._changed.notify_all()
                self._notify()
        except grpc.RpcError:
            pass
        with self._lock:
            if self._endpoints.get(ep.resource) is ep:
                del self._endpoints[ep.resource]
                self.events.append(("Disconnected", ep.resource))
                self._changed.notify_all()
        self._notify()

    def _notify(self) -> None:
        if self.on_change:
            try:
                self.on_change(self.capacity())
            except Exception:  # the kubelet's callback must not kill the stream reader
                log.exception("device on_change callback failed")

    # --- the DevicePlugins hook -----------------------------------------
    def capacity(self) -> dict[str, int]:
        """Healthy devices per resource: what the node reports as allocatable."""
        with self._lock:
            return {r: sum(h == HEALTHY for h in ep.devices.values()) for r, ep in self._endpoints.items()}

    def total(self) -> dict[str, int]:
        """All devices per resource, healthy or not: the node's capacity."""
        with self._lock:
            return {r: len(ep.devices) for r, ep in self._endpoints.items()}

    def devices(self, resource: str) -> dict[str, str]:
        with self._lock:
            ep = self._endpoints.get(resource)
            return dict(ep.devices) if ep else {}

    def wait_for(self, resource: str, healthy: int, timeout: float = 10.0) -> bool:
        """Block until ``resource`` has exactly ``healthy`` healthy devices (labs, tests)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.capacity().get(resource) == healthy, timeout)

    def _in_use(self, resource: str) -> set[str]:
        return {d for pod in self._allocated.values() for ctr in pod.values() for d in ctr.get(resource, [])}

    def allocate(self, pod: dict, container: dict) -> DeviceAllocation:
        uid = pod.get("metadata", {}).get("uid") or pod.get("metadata", {}).get("name", "")
        res = container.get("resources") or {}
        wanted = {**(res.get("requests") or {}), **(res.get("limits") or {})}
        out = DeviceAllocation()
        with self._lock:
            for name, q in wanted.items():
                if "/" not in name or name.startswith(("kubernetes.io/", "hugepages-")):
                    continue  # cpu, memory ... are not devices
                n = quantity.value(q)
                if n <= 0:
                    continue
                ep = self._endpoints.get(name)
                if ep is None:
                    raise PluginError(f"no device plugin is registered for {name}; the pod asked for {n}",
                                      reason="UnexpectedAdmissionError")
                cname = container.get("name", "")
                ids = self._allocated.get(uid, {}).get(cname, {}).get(name)
                if not ids:  # a restart keeps what the container had; a first start picks free devices
                    free = [d for d, h in sorted(ep.devices.items()) if h == HEALTHY and d not in self._in_use(name)]
                    if len(free) < n:
                        raise PluginError(
                            f"Allocate failed due to requested number of devices unavailable for {name}. "
                            f"Requested: {n}, Available: {len(free)}",
                            reason="UnexpectedAdmissionError",
                        )
                    ids = free[:n]
                try:
                    resp = ep.stub.Allocate(
                        pb.AllocateRequest(container_requests=[pb.ContainerAllocateRequest(devicesIDs=ids)]), timeout=10
                    )
                    if ep.options.pre_start_required:
                        ep.stub.PreStartContainer(pb.PreStartContainerRequest(devicesIDs=ids), timeout=10)
                except grpc.RpcError as exc:
                    raise PluginError(f"device plugin for {name} failed Allocate: {exc.details()}",
                                      reason="UnexpectedAdmissionError") from None
                self._allocated.setdefault(uid, {}).setdefault(cname, {})[name] = list(ids)
                self.events.append(("Allocate", f"{name}: {','.join(ids)} -> {container.get('name', '?')}"))
                for r in resp.container_responses:
                    out.env.update(r.envs)
                    out.devices += [Device(d.host_path, d.container_path, d.permissions or "rw") for d in r.devices]
                    out.mounts += [Mount(m.host_path, m.container_path, m.read_only) for m in r.mounts]
        return out

    def release_pod(self, pod: dict) -> None:
        uid = pod.get("metadata", {}).get("uid") or pod.get("metadata", {}).get("name", "")
        with self._lock:
            self._allocated.pop(uid, None)

    def allocated(self) -> dict[str, dict[str, list[str]]]:
        """Pod uid -> resource -> device ids in use by its containers."""
        with self._lock:
            out: dict[str, dict[str, list[str]]] = {}
            for uid, ctrs in self._allocated.items():
                for res in ctrs.values():
                    for r, ids in res.items():
                        out.setdefault(uid, {}).setdefault(r, []).extend(ids)
            return out

    def close(self) -> None:
        self._server.stop(0.2).wait()
        with self._lock:
            eps = list(self._endpoints.values())
            self._endpoints.clear()
        for ep in eps:
            ep.channel.close()
        Path(self.socket).unlink(missing_ok=True)
