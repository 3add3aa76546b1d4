"""A sample device plugin: simulated GPUs, or the real NVIDIA GPUs when ``nvidia-smi`` works.

It does what NVIDIA's plugin does, small: serve ``v1beta1.DevicePlugin`` on a socket in the
kubelet's device-plugin directory, ``Register`` with the kubelet, stream the device list on
``ListAndWatch`` (again whenever a device's health changes), and answer ``Allocate`` with what
a container needs to use its devices: ``NVIDIA_VISIBLE_DEVICES``, the device nodes, and a
read-only mount describing them.

Simulated GPUs are character devices the plugin creates with ``mknod`` (the same numbers as
``/dev/null``, so they are harmless), or plain files when ``mknod`` is not allowed.

    python -m labkit.node.deviceplugin.sample --kubelet-dir DIR [--count 2] [--real]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc

from labkit import paths
from labkit.node.deviceplugin import api_pb2 as pb
from labkit.node.deviceplugin import api_pb2_grpc as pb_grpc
from labkit.node.deviceplugin.manager import API_VERSION, HEALTHY, KUBELET_SOCKET, UNHEALTHY
from labkit.node.signals import wait_for_termination

CONTROL_DEVICES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools")


@dataclass
class GPU:
    id: str
    host_path: str  # the device node on the host
    container_path: str  # where the container sees it
    model: str
    health: str = HEALTHY


def nvidia_gpus() -> list[GPU]:
    """The host's real NVIDIA GPUs, from ``nvidia-smi`` (empty when there is none)."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index,uuid,name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    gpus = []
    for line in out.strip().splitlines():
        idx, uuid, name = (x.strip() for x in line.split(",", 2))
        gpus.append(GPU(uuid, f"/dev/nvidia{idx}", f"/dev/nvidia{idx}", name))
    return gpus


def simulated_gpus(count: int, where: Path) -> list[GPU]:
    """``count`` fake GPUs as device nodes under ``where``."""
    where.mkdir(parents=True, exist_ok=True)
    gpus = []
    for i in range(count):
        node = where / f"lkgpu{i}"
        if not node.exists():
            r = subprocess.run(["mknod", "-m", "666", str(node), "c", "1", "3"], capture_output=True)
            if r.returncode != 0:
                node.write_text(f"simulated GPU {i}\n")
        gpus.append(GPU(f"LK-GPU-{i}", str(node), f"/dev/nvidia{i}", "labkit simulated GPU"))
    return gpus


class SampleDevicePlugin(pb_grpc.DevicePluginServicer):
    """Serve, register, stream health; ``set_health`` flips a device to show allocatable shrink."""

    def __init__(self, kubelet_dir: str | os.PathLike, resource: str = "nvidia.com/gpu", count: int = 2,
                 real: bool | None = None, name: str | None = None):
        self.dir = Path(kubelet_dir)
        self.resource = resource
        self.endpoint = f"{name or 'labkit-gpu'}-{os.getpid()}-{id(self) % 10000}.sock"
        found = nvidia_gpus() if real in (None, True) else []
        if real and not found:
            raise RuntimeError("--real was asked for, but nvidia-smi lists no GPU on this host")
        self.real = bool(found)
        # per kubelet folder: plugins in their own pods (one per node) all have pid 1
        self.state = paths.state_dir() / "devices" / self.dir.name / self.endpoint.removesuffix(".sock")
        self.gpus = {g.id: g for g in (found or simulated_gpus(count, self.state))}
        self._cond = threading.Condition()
        self._version = 0
        self._stopped = False
        self._server: grpc.Server | None = None
        self.allocations: list[list[str]] = []

    @property
    def kind(self) -> str:
        """Says plainly what this plugin advertises, for lab output."""
        return "real NVIDIA GPUs (nvidia-smi)" if self.real else "simulated GPUs (device nodes made with mknod)"

    # --- DevicePlugin service --------------------------------------------
    def GetDevicePluginOptions(self, request, context):
        return pb.DevicePluginOptions(pre_start_required=False)

    def ListAndWatch(self, request, context):
        seen = -1
        while True:
            with self._cond:
                self._cond.wait_for(lambda s=seen: self._version != s or self._stopped or not context.is_active(),
                                    timeout=1.0)
                if self._stopped or not context.is_active():
                    return
                if self._version == seen:
                    continue
                seen = self._version
                devices = [pb.Device(ID=g.id, health=g.health) for g in self.gpus.values()]
            yield pb.ListAndWatchResponse(devices=devices)

    def GetPreferredAllocation(self, request, context):
        resp = pb.PreferredAllocationResponse()
        for r in request.container_requests:
            resp.container_responses.add(deviceIDs=list(r.available_deviceIDs)[: r.allocation_size])
        return resp

    def Allocate(self, request, context):
        resp = pb.AllocateResponse()
        for creq in request.container_requests:
            ids = list(creq.devicesIDs)
            unknown = [i for i in ids if i not in self.gpus]
            if unknown:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown device ids {unknown}")
            self.allocations.append(ids)
            info = self.state / "alloc" / "-".join(ids)
            info.mkdir(parents=True, exist_ok=True)
            (info / "devices.json").write_text(json.dumps(
                [{"id": i, "model": self.gpus[i].model, "path": self.gpus[i].container_path} for i in ids]))
            specs = [pb.DeviceSpec(container_path=self.gpus[i].container_path, host_path=self.gpus[i].host_path,
                                   permissions="rw") for i in ids]
            if self.real:  # the driver's control nodes every CUDA process opens besides its GPU
                specs += [pb.DeviceSpec(container_path=p, host_path=p, permissions="rw")
                          for p in CONTROL_DEVICES if os.path.exists(p)]
            resp.container_responses.append(pb.ContainerAllocateResponse(
                envs={"NVIDIA_VISIBLE_DEVICES": ",".join(ids)},
                devices=specs,
                mounts=[pb.Mount(container_path="/run/labkit-gpu", host_path=str(info), read_only=True)],
            ))
        return resp

    def PreStartContainer(self, request, context):
        return pb.PreStartContainerResponse()

    # --- lifecycle ---------------------------------------------------------
    def set_health(self, device_id: str, healthy: bool) -> None:
        """Flip a device's health; ListAndWatch sends the new list to the kubelet at once."""
        with self._cond:
            self.gpus[device_id].health = HEALTHY if healthy else UNHEALTHY
            self._version += 1
            self._cond.notify_all()

    def start(self) -> SampleDevicePlugin:
        """Serve on ``<dir>/<endpoint>``, then Register with the kubelet's socket."""
        sock = self.dir / self.endpoint
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        pb_grpc.add_DevicePluginServicer_to_server(self, self._server)
        self._server.add_insecure_port(f"unix:{sock}")
        self._server.start()
        with grpc.insecure_channel(f"unix:{self.dir / KUBELET_SOCKET}") as ch:
            try:
                pb_grpc.RegistrationStub(ch).Register(
                    pb.RegisterRequest(version=API_VERSION, endpoint=self.endpoint, resource_name=self.resource,
                                       options=pb.DevicePluginOptions()), timeout=10)
            except grpc.RpcError as exc:
                self.stop()
                raise RuntimeError(f"kubelet at {self.dir / KUBELET_SOCKET} refused registration: "
                                   f"{exc.code().name}: {exc.details()}") from None
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._server:
            self._server.stop(0.2).wait()
        (self.dir / self.endpoint).unlink(missing_ok=True)
        shutil.rmtree(self.state, ignore_errors=True)
        with contextlib.suppress(OSError):  # the node's folder, once its last plugin is gone
            self.state.parent.rmdir()

    def __enter__(self) -> SampleDevicePlugin:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m labkit.node.deviceplugin.sample", description=__doc__.splitlines()[0])
    ap.add_argument("--kubelet-dir", required=True, help="the node's device-plugin directory (holds kubelet.sock)")
    ap.add_argument("--resource", default="nvidia.com/gpu")
    ap.add_argument("--count", type=int, default=2, help="simulated GPUs (ignored with real GPUs)")
    ap.add_argument("--real", action="store_true", help="require real NVIDIA GPUs")
    ap.add_argument("--simulated", action="store_true", help="simulate even when nvidia-smi exists")
    a = ap.parse_args(argv)
    try:
        plugin = SampleDevicePlugin(a.kubelet_dir, a.resource, a.count,
                                    real=True if a.real else (False if a.simulated else None)).start()
    except RuntimeError as exc:
        print(f"device plugin: {exc}", file=sys.stderr)
        return 1
    print(f"device plugin: {len(plugin.gpus)} x {a.resource}: {plugin.kind}"
          f"{'' if plugin.real else ', NOT real GPUs'}; registered at {a.kubelet_dir}/{KUBELET_SOCKET}", flush=True)
    wait_for_termination()
    plugin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
