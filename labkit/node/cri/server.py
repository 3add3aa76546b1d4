"""A CRI server: the ``runtime.v1`` gRPC services on a unix socket, fronting any labkit backend.

This is the seam the book draws between the kubelet and "the runtime": the kubelet only speaks
CRI, and what sits behind the socket (labkit's native runtime, runc, crun, Docker, or the
simulated runtime) is invisible to it. Restart the server with another ``--backend`` and the
kubelet keeps working: that is lab 24.

    python -m labkit.node.cri.server --socket /run/labkit/cri/node1.sock --backend runc
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent import futures
from pathlib import Path

import grpc

from labkit.errors import LabkitError, NotFound, Unsupported
from labkit.node.cri import api_pb2 as pb
from labkit.node.cri import api_pb2_grpc as pb_grpc
from labkit.node.cri import convert
from labkit.node.cri import labkit_ext_pb2 as ext
from labkit.node.cri import labkit_ext_pb2_grpc as ext_grpc
from labkit.node.cri.worker import FORKING_BACKENDS, ProcessRuntime
from labkit.node.signals import wait_for_termination
from labkit.runtime.base import Runtime

CRI_API_VERSION = "v1"


class Trace:
    """Every RPC the server answered: method, a one-line summary, duration, status code.

    Kept in memory and, when ``path`` is given, appended as JSON lines so a notebook in another
    process can show the request crossing the socket.
    """

    def __init__(self, path: str | None = None, limit: int = 1000):
        self.path = path
        self.limit = limit
        self.entries: list[dict] = []
        self._lock = threading.Lock()

    def record(self, entry: dict) -> None:
        with self._lock:
            self.entries.append(entry)
            del self.entries[: -self.limit]
            if self.path:
                with open(self.path, "a") as f:
                    f.write(json.dumps(entry) + "\n")


def _summary(request) -> str:
    """A short, human view of a request: its non-empty scalar fields and key names."""
    parts = []
    for fd, value in request.ListFields():
        if fd.message_type is None and not fd.is_repeated:
            parts.append(f"{fd.name}={value!r}")
        elif fd.name in ("config", "sandbox_config") and hasattr(value, "metadata"):
            parts.append(f"{fd.name}.name={value.metadata.name!r}")
        elif fd.name == "image":
            parts.append(f"image={value.image!r}")
        elif fd.name == "cmd":
            parts.append(f"cmd={list(value)!r}")
    return " ".join(parts)


def _made_id(response) -> str:
    """The id a Run/Create call handed back, so a trace reader can follow one pod from its
    RunPodSandbox through CreateContainer to StartContainer (the per-phase start-up breakdown)."""
    for name in ("pod_sandbox_id", "container_id"):
        value = getattr(response, name, "") if response is not None else ""
        if value:
            return f"{name}={value!r}"
    return ""


def _rpc(method: Callable) -> Callable:
    """Wrap a servicer method: time it, trace it, and turn runtime errors into gRPC status codes."""

    @functools.wraps(method)
    def wrapper(self: _Base, request, context: grpc.ServicerContext):
        t0 = time.perf_counter()
        code = "OK"
        response = None
        try:
            response = method(self, request, context)
            return response
        except NotFound as exc:
            code = "NOT_FOUND"
            context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        except Unsupported as exc:
            code = "FAILED_PRECONDITION"
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except LabkitError as exc:
            code = "UNKNOWN"
            context.abort(grpc.StatusCode.UNKNOWN, str(exc))
        except (ValueError, KeyError, TypeError) as exc:
            code = "INVALID_ARGUMENT"
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{type(exc).__name__}: {exc}")
        except OSError as exc:
            code = "INTERNAL"
            context.abort(grpc.StatusCode.INTERNAL, f"the {self.runtime.name} backend failed: {exc}")
        finally:
            entry = {
                "t": time.time(),
                "method": f"{self.service}/{method.__name__}",
                "request": _summary(request),
                "ms": round((time.perf_counter() - t0) * 1000, 2),
                "code": code,
                "backend": self.runtime.name,
            }
            made = _made_id(response)
            if made:
                entry["response"] = made
            self.trace.record(entry)

    return wrapper


class _Base:
    service = ""

    def __init__(self, runtime: Runtime, trace: Trace):
        self.runtime = runtime
        self.trace = trace


class RuntimeServicer(_Base, pb_grpc.RuntimeServiceServicer):
    service = "runtime.v1.RuntimeService"

    @_rpc
    def Version(self, request, context):
        v = self.runtime.version()
        return pb.VersionResponse(
            version="0.1.0",
            runtime_name=v.runtime_name,
            runtime_version=v.runtime_version,
            runtime_api_version=CRI_API_VERSION,
        )

    @_rpc
    def RunPodSandbox(self, request, context):
        sid = self.runtime.run_pod_sandbox(convert.sandbox_config_from_pb(request.config))
        return pb.RunPodSandboxResponse(pod_sandbox_id=sid)

    @_rpc
    def StopPodSandbox(self, request, context):
        self.runtime.stop_pod_sandbox(request.pod_sandbox_id)
        return pb.StopPodSandboxResponse()

    @_rpc
    def RemovePodSandbox(self, request, context):
        try:
            self.runtime.remove_pod_sandbox(request.pod_sandbox_id)
        except NotFound:
            pass  # CRI: removing a sandbox that is gone is not an error
        return pb.RemovePodSandboxResponse()

    @_rpc
    def PodSandboxStatus(self, request, context):
        status, info = convert.sandbox_status_to_pb(self.runtime.pod_sandbox_status(request.pod_sandbox_id))
        return pb.PodSandboxStatusResponse(status=status, info=info)

    @_rpc
    def ListPodSandbox(self, request, context):
        f = request.filter
        items = []
        for s in self.runtime.list_pod_sandboxes():
            if f.id and not s.id.startswith(f.id):
                continue
            if f.HasField("state") and convert.sandbox_state_to_pb(s.state) != f.state.state:
                continue
            if any(s.labels.get(k) != v for k, v in f.label_selector.items()):
                continue
            items.append(convert.sandbox_to_pb(s))
        return pb.ListPodSandboxResponse(items=items)

    @_rpc
    def CreateContainer(self, request, context):
        cid = self.runtime.create_container(
            request.pod_sandbox_id,
            convert.container_config_from_pb(request.config),
            convert.sandbox_config_from_pb(request.sandbox_config),
        )
        return pb.CreateContainerResponse(container_id=cid)

    @_rpc
    def StartContainer(self, request, context):
        self.runtime.start_container(request.container_id)
        return pb.StartContainerResponse()

    @_rpc
    def StopContainer(self, request, context):
        self.runtime.stop_container(request.container_id, timeout=float(request.timeout or 0))
        return pb.StopContainerResponse()

    @_rpc
    def RemoveContainer(self, request, context):
        try:
            self.runtime.remove_container(request.container_id)
        except NotFound:
            pass
        return pb.RemoveContainerResponse()

    @_rpc
    def ListContainers(self, request, context):
        f = request.filter
        out = []
        for c in self.runtime.list_containers(f.pod_sandbox_id or None):
            if f.id and not c.id.startswith(f.id):
                continue
            if f.HasField("state") and convert.container_state_to_pb(c.state) != f.state.state:
                continue
            if any(c.labels.get(k) != v for k, v in f.label_selector.items()):
                continue
            out.append(convert.container_to_pb(c))
        return pb.ListContainersResponse(containers=out)

    @_rpc
    def ContainerStatus(self, request, context):
        status, info = convert.container_status_to_pb(self.runtime.container_status(request.container_id))
        return pb.ContainerStatusResponse(status=status, info=info)

    @_rpc
    def ExecSync(self, request, context):
        r = self.runtime.exec_sync(request.container_id, list(request.cmd), timeout=float(request.timeout or 10))
        return pb.ExecSyncResponse(stdout=r.stdout, stderr=r.stderr, exit_code=r.exit_code)

    @_rpc
    def Exec(self, request, context):
        url = self.runtime.exec(request.container_id, list(request.cmd), tty=request.tty, stdin=request.stdin,
                                stdout=request.stdout, stderr=request.stderr)
        return pb.ExecResponse(url=url)

    @_rpc
    def PortForward(self, request, context):
        return pb.PortForwardResponse(url=self.runtime.port_forward(request.pod_sandbox_id))

    @_rpc
    def ContainerStats(self, request, context):
        s = self.runtime.container_stats(request.container_id)
        now = time.time_ns()
        stats = pb.ContainerStats(attributes=pb.ContainerAttributes(id=s.id))
        if s.cpu_usage_ns is not None:
            stats.cpu.CopyFrom(
                pb.CpuUsage(timestamp=now, usage_core_nano_seconds=pb.UInt64Value(value=s.cpu_usage_ns))
            )
        if s.memory_bytes is not None:
            stats.memory.CopyFrom(
                pb.MemoryUsage(timestamp=now, working_set_bytes=pb.UInt64Value(value=s.memory_bytes))
            )
        return pb.ContainerStatsResponse(stats=stats)


class ImageServicer(_Base, pb_grpc.ImageServiceServicer):
    service = "runtime.v1.ImageService"

    @_rpc
    def ListImages(self, request, context):
        want = request.filter.image.image
        images = [i for i in self.runtime.list_images() if not want or i.name == want]
        return pb.ListImagesResponse(images=[convert.image_to_pb(i) for i in images])

    @_rpc
    def ImageStatus(self, request, context):
        info = self.runtime.image_status(request.image.image)
        # CRI: an image that is not present is an empty response, not an error.
        return pb.ImageStatusResponse(image=convert.image_to_pb(info)) if info else pb.ImageStatusResponse()

    @_rpc
    def PullImage(self, request, context):
        info = self.runtime.pull_image(request.image.image)
        return pb.PullImageResponse(image_ref=info.digest)


class LogsServicer(_Base, ext_grpc.LogsServicer):
    service = "labkit.cri.v1.Logs"

    @_rpc
    def ContainerLogs(self, request, context):
        return ext.ContainerLogsResponse(log=self.runtime.logs(request.container_id))


class CRIServer:
    """A running CRI server; ``stop()`` closes the socket (containers keep running, as with containerd)."""

    def __init__(self, runtime: Runtime, socket_path: str | os.PathLike, trace_path: str | None = None):
        self.runtime = runtime
        self.socket_path = str(socket_path)
        self.trace = Trace(trace_path)
        Path(self.socket_path).parent.mkdir(parents=True, exist_ok=True)
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)  # a stale socket from a killed server
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        pb_grpc.add_RuntimeServiceServicer_to_server(RuntimeServicer(runtime, self.trace), self._server)
        pb_grpc.add_ImageServiceServicer_to_server(ImageServicer(runtime, self.trace), self._server)
        ext_grpc.add_LogsServicer_to_server(LogsServicer(runtime, self.trace), self._server)
        self._server.add_insecure_port(f"unix:{self.socket_path}")

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self) -> CRIServer:
        self._server.start()
        return self

    def stop(self, grace: float = 0.5) -> None:
        self._server.stop(grace).wait()
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        self.runtime.close()

    def __enter__(self) -> CRIServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(runtime: Runtime, socket_path: str | os.PathLike, trace_path: str | None = None) -> CRIServer:
    """Start a CRI server for ``runtime`` on ``socket_path`` in this process (threads).

    A backend that forks containers from its caller (native) cannot share a process with gRPC's
    threads, so for it the server talks to a copy of the backend in a worker process instead;
    containers, sandboxes and images are the same (they live on disk, not in the object).
    """
    if runtime.name in FORKING_BACKENDS and not isinstance(runtime, ProcessRuntime):
        runtime = ProcessRuntime(runtime.name)
    return CRIServer(runtime, socket_path, trace_path).start()


def load_backend(name: str) -> Runtime:
    """The labkit backend called ``name``, with a plain error when it cannot run here."""
    from labkit import runtime as runtimes

    try:
        return runtimes.get(name)
    except Unsupported as exc:
        raise SystemExit(f"backend {name!r} cannot run here: {exc}") from exc
    except (KeyError, ValueError) as exc:
        raise SystemExit(f"unknown backend {name!r}: {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m labkit.node.cri.server", description=__doc__.splitlines()[0])
    ap.add_argument("--socket", required=True, help="unix socket path to listen on")
    ap.add_argument(
        "--backend", default="native", help="native | runc | crun | docker | simulated (default native)"
    )
    ap.add_argument("--trace", default=None, help="append one JSON line per RPC to this file")
    args = ap.parse_args(argv)
    runtime = ProcessRuntime(args.backend) if args.backend in FORKING_BACKENDS else load_backend(args.backend)
    server = serve(runtime, args.socket, args.trace)
    print(f"CRI server: backend={runtime.version().runtime_name} socket={args.socket}", flush=True)
    wait_for_termination()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
