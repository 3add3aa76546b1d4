"""``RemoteRuntime``: the kubelet's side of CRI — the Runtime interface, spoken over gRPC.

The kubelet holds one of these instead of a backend object. Every call becomes a
``runtime.v1`` RPC on the unix socket; gRPC status codes come back as labkit's runtime
errors, so the kubelet handles a remote runtime exactly like an in-process one.
"""

from __future__ import annotations

import time

import grpc

from labkit.errors import LabkitError, NotFound, Unsupported
from labkit.node.cri import api_pb2 as pb
from labkit.node.cri import api_pb2_grpc as pb_grpc
from labkit.node.cri import convert
from labkit.node.cri import labkit_ext_pb2 as ext
from labkit.node.cri import labkit_ext_pb2_grpc as ext_grpc
from labkit.runtime.base import (
    ContainerConfig,
    ContainerStats,
    ContainerStatus,
    ExecResult,
    ImageInfo,
    PodSandboxConfig,
    PodSandboxStatus,
    Runtime,
    VersionInfo,
)


def normalize_endpoint(endpoint: str) -> str:
    """Accept ``/path.sock``, ``unix:/path`` or ``unix:///path`` (crictl's spelling)."""
    if endpoint.startswith("unix://"):
        return "unix:" + endpoint[len("unix://") :]
    if endpoint.startswith("unix:"):
        return endpoint
    return "unix:" + endpoint


class RemoteRuntime(Runtime):
    """A Runtime whose every method is a CRI RPC to ``endpoint``."""

    name = "cri"

    def __init__(self, endpoint: str, timeout: float = 60.0, connect_timeout: float = 5.0):
        self.endpoint = normalize_endpoint(endpoint)
        self.timeout = timeout
        self._channel = grpc.insecure_channel(self.endpoint)
        try:
            grpc.channel_ready_future(self._channel).result(timeout=connect_timeout)
        except grpc.FutureTimeoutError as exc:
            self._channel.close()
            raise Unsupported(
                f"no CRI server answers at {self.endpoint}; start one with "
                f"'python -m labkit.node.cri.server --socket PATH --backend native'"
            ) from exc
        self._rt = pb_grpc.RuntimeServiceStub(self._channel)
        self._img = pb_grpc.ImageServiceStub(self._channel)
        self._logs = ext_grpc.LogsStub(self._channel)
        #: (method, milliseconds) of every call, newest last: the client half of the trace
        self.calls: list[tuple[str, float]] = []

    def _call(self, stub, method: str, request):
        t0 = time.perf_counter()
        try:
            return getattr(stub, method)(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            code, detail = exc.code(), exc.details()
            if code == grpc.StatusCode.NOT_FOUND:
                raise NotFound(detail) from None
            if code == grpc.StatusCode.FAILED_PRECONDITION:
                raise Unsupported(detail) from None
            if code == grpc.StatusCode.UNAVAILABLE:
                raise LabkitError(f"CRI server at {self.endpoint} is unavailable: {detail}") from None
            raise LabkitError(f"{method}: {detail}") from None
        finally:
            self.calls.append((method, (time.perf_counter() - t0) * 1000))
            del self.calls[:-200]

    # --- identity -------------------------------------------------------
    def version(self) -> VersionInfo:
        r = self._call(self._rt, "Version", pb.VersionRequest(version="v1"))
        return VersionInfo(
            runtime_name=r.runtime_name, runtime_version=r.runtime_version, api_version=r.runtime_api_version
        )

    # --- images ---------------------------------------------------------
    def list_images(self) -> list[ImageInfo]:
        r = self._call(self._img, "ListImages", pb.ListImagesRequest())
        return [convert.image_from_pb(i) for i in r.images]

    def image_status(self, image: str) -> ImageInfo | None:
        r = self._call(self._img, "ImageStatus", pb.ImageStatusRequest(image=pb.ImageSpec(image=image)))
        return convert.image_from_pb(r.image) if r.HasField("image") and r.image.id else None

    def pull_image(self, image: str) -> ImageInfo:
        self._call(self._img, "PullImage", pb.PullImageRequest(image=pb.ImageSpec(image=image)))
        info = self.image_status(image)
        if info is None:
            raise NotFound(f"image {image!r} was pulled but the runtime does not list it")
        return info

    # --- sandboxes ------------------------------------------------------
    def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        req = pb.RunPodSandboxRequest(config=convert.sandbox_config_to_pb(config))
        return self._call(self._rt, "RunPodSandbox", req).pod_sandbox_id

    def stop_pod_sandbox(self, sandbox_id: str) -> None:
        self._call(self._rt, "StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))

    def remove_pod_sandbox(self, sandbox_id: str) -> None:
        self._call(self._rt, "RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))

    def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus:
        r = self._call(
            self._rt, "PodSandboxStatus", pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id, verbose=True)
        )
        return convert.sandbox_status_from_pb(r.status, dict(r.info))

    def list_pod_sandboxes(self) -> list[PodSandboxStatus]:
        r = self._call(self._rt, "ListPodSandbox", pb.ListPodSandboxRequest())
        return [convert.sandbox_status_from_pb(_as_status(s), {}) for s in r.items]

    # --- containers -----------------------------------------------------
    def create_container(self, sandbox_id: str, config: ContainerConfig, sandbox_config: PodSandboxConfig) -> str:
        req = pb.CreateContainerRequest(
            pod_sandbox_id=sandbox_id,
            config=convert.container_config_to_pb(config),
            sandbox_config=convert.sandbox_config_to_pb(sandbox_config),
        )
        return self._call(self._rt, "CreateContainer", req).container_id

    def start_container(self, container_id: str) -> None:
        self._call(self._rt, "StartContainer", pb.StartContainerRequest(container_id=container_id))

    def stop_container(self, container_id: str, timeout: float = 10.0) -> None:
        req = pb.StopContainerRequest(container_id=container_id, timeout=int(timeout))
        self._call(self._rt, "StopContainer", req)

    def remove_container(self, container_id: str) -> None:
        self._call(self._rt, "RemoveContainer", pb.RemoveContainerRequest(container_id=container_id))

    def container_status(self, container_id: str) -> ContainerStatus:
        req = pb.ContainerStatusRequest(container_id=container_id, verbose=True)
        r = self._call(self._rt, "ContainerStatus", req)
        return convert.container_status_from_pb(r.status, dict(r.info))

    def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        req = pb.ListContainersRequest(filter=pb.ContainerFilter(pod_sandbox_id=sandbox_id or ""))
        r = self._call(self._rt, "ListContainers", req)
        return [
            ContainerStatus(
                id=c.id,
                sandbox_id=c.pod_sandbox_id,
                name=c.metadata.name,
                image=c.image.image,
                image_ref=c.image_ref,
                state=convert.container_state_from_pb(c.state),
                created_at=convert.from_ns(c.created_at) or 0.0,
                labels=dict(c.labels),
            )
            for c in r.containers
        ]

    def logs(self, container_id: str) -> bytes:
        return self._call(self._logs, "ContainerLogs", ext.ContainerLogsRequest(container_id=container_id)).log

    def exec_sync(self, container_id: str, cmd: list[str], timeout: float = 10.0) -> ExecResult:
        req = pb.ExecSyncRequest(container_id=container_id, cmd=cmd, timeout=int(timeout))
        r = self._call(self._rt, "ExecSync", req)
        return ExecResult(exit_code=r.exit_code, stdout=r.stdout, stderr=r.stderr)

    def exec(self, container_id: str, cmd: list[str], tty: bool = False, stdin: bool = False,
             stdout: bool = True, stderr: bool = True) -> str:
        """CRI ``Exec``: the URL of the CRI server's own streaming server."""
        req = pb.ExecRequest(container_id=container_id, cmd=cmd, tty=tty, stdin=stdin, stdout=stdout, stderr=stderr)
        return self._call(self._rt, "Exec", req).url

    def port_forward(self, sandbox_id: str) -> str:
        """CRI ``PortForward``: the URL of the CRI server's streaming server for this pod."""
        return self._call(self._rt, "PortForward", pb.PortForwardRequest(pod_sandbox_id=sandbox_id)).url

    def container_stats(self, container_id: str) -> ContainerStats:
        r = self._call(self._rt, "ContainerStats", pb.ContainerStatsRequest(container_id=container_id))
        s = r.stats
        return ContainerStats(
            id=s.attributes.id or container_id,
            memory_bytes=s.memory.working_set_bytes.value if s.HasField("memory") else None,
            cpu_usage_ns=s.cpu.usage_core_nano_seconds.value if s.HasField("cpu") else None,
        )

    def close(self) -> None:
        self._channel.close()


def _as_status(s: pb.PodSandbox) -> pb.PodSandboxStatus:
    return pb.PodSandboxStatus(
        id=s.id, metadata=s.metadata, state=s.state, created_at=s.created_at, labels=dict(s.labels)
    )
