"""Run a runtime backend in a helper process of its own, and call it over a pipe.

Why: labkit's native backend starts containers with a bare ``fork()``. gRPC's server keeps
threads, and a process with gRPC threads cannot fork safely (the child's gRPC at-fork hooks
crash). So the CRI server keeps gRPC in its own process and hands every backend call to this
single-threaded worker, which forks containers in peace. The worker imports no gRPC.

    python -m labkit.node.cri.worker BACKEND FD     # started by ProcessRuntime, not by hand
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection

from labkit.errors import LabkitError, Unsupported
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

#: backends that fork containers from the calling process and so must not share it with gRPC
FORKING_BACKENDS = {"native"}


class _Worker:
    """One helper process and the pipe to it."""

    def __init__(self, backend: str):
        parent, child = socket.socketpair()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "labkit.node.cri.worker", backend, str(child.fileno())],
            pass_fds=[child.fileno()], stdin=subprocess.DEVNULL,
        )
        child.close()
        self.conn = Connection(parent.detach())

    def close(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.conn.close()


class ProcessRuntime(Runtime):
    """A Runtime whose backend lives in worker processes; every call is one message on a pipe.

    A small pool of workers lets a slow call (StopContainer waits for the grace period) run while
    others (ListContainers) are answered; the backends keep their state on disk, so any worker
    can serve any call.
    """

    def __init__(self, backend: str, workers: int = 3):
        self.name = backend
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []
        self._cond = threading.Condition()
        for _ in range(workers):
            w = _Worker(backend)
            self._all.append(w)
            ok, info = w.conn.recv()
            if not ok:
                self.close()
                raise info
            self.reason = info
            self._idle.append(w)

    def _call(self, method: str, *args, **kw):
        with self._cond:
            self._cond.wait_for(lambda: self._idle)
            w = self._idle.pop()
        try:
            if w.proc.poll() is not None:
                raise LabkitError(f"the {self.name} backend worker exited ({w.proc.returncode})")
            w.conn.send((method, args, kw))
            try:
                ok, value = w.conn.recv()
            except EOFError:
                raise LabkitError(f"the {self.name} backend worker died during {method}") from None
        finally:
            with self._cond:
                self._idle.append(w)
                self._cond.notify()
        if not ok:
            raise value
        return value

    def version(self) -> VersionInfo:
        return self._call("version")

    def list_images(self) -> list[ImageInfo]:
        return self._call("list_images")

    def image_status(self, image: str) -> ImageInfo | None:
        return self._call("image_status", image)

    def pull_image(self, image: str) -> ImageInfo:
        return self._call("pull_image", image)

    def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        return self._call("run_pod_sandbox", config)

    def stop_pod_sandbox(self, sandbox_id: str) -> None:
        return self._call("stop_pod_sandbox", sandbox_id)

    def remove_pod_sandbox(self, sandbox_id: str) -> None:
        return self._call("remove_pod_sandbox", sandbox_id)

    def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus:
        return self._call("pod_sandbox_status", sandbox_id)

    def list_pod_sandboxes(self) -> list[PodSandboxStatus]:
        return self._call("list_pod_sandboxes")

    def create_container(self, sandbox_id: str, config: ContainerConfig, sandbox_config: PodSandboxConfig) -> str:
        return self._call("create_container", sandbox_id, config, sandbox_config)

    def start_container(self, container_id: str) -> None:
        return self._call("start_container", container_id)

    def stop_container(self, container_id: str, timeout: float = 10.0) -> None:
        return self._call("stop_container", container_id, timeout)

    def remove_container(self, container_id: str) -> None:
        return self._call("remove_container", container_id)

    def container_status(self, container_id: str) -> ContainerStatus:
        return self._call("container_status", container_id)

    def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        return self._call("list_containers", sandbox_id)

    def logs(self, container_id: str) -> bytes:
        return self._call("logs", container_id)

    def exec_sync(self, container_id: str, cmd: list[str], timeout: float = 10.0) -> ExecResult:
        return self._call("exec_sync", container_id, cmd, timeout)

    def container_stats(self, container_id: str) -> ContainerStats:
        return self._call("container_stats", container_id)

    def exec(self, container_id: str, cmd: list[str], tty: bool = False, stdin: bool = False,
             stdout: bool = True, stderr: bool = True) -> str:
        """The worker's own streaming server runs the command: it forks there, away from gRPC's threads."""
        return self._call("exec", container_id, cmd, tty, stdin, stdout, stderr)

    def port_forward(self, sandbox_id: str) -> str:
        return self._call("port_forward", sandbox_id)

    def close(self) -> None:
        for w in self._all:
            w.close()
        self._all.clear()
        self._idle.clear()


def _warm(rt: Runtime) -> None:
    """Look at the images and sandboxes once before serving: the first ImageStatus in a fresh
    worker loads the image store (tens of ms), and would otherwise land on a pod's start-up."""
    try:
        for image in rt.list_images():
            rt.image_status(image.name)
        rt.list_pod_sandboxes()
    except Exception:  # noqa: BLE001, S110 - only a warm-up: the real calls report real errors
        pass


def _serve(backend: str, fd: int) -> int:
    conn = Connection(fd)
    try:
        from labkit import runtime as runtimes

        rt = runtimes.get(backend)
    except Exception as exc:  # tell the parent why, in words
        conn.send((False, Unsupported(f"backend {backend!r} cannot run here: {exc}")))
        return 1
    _warm(rt)
    conn.send((True, getattr(rt, "reason", backend)))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            break  # the CRI server is gone
        if msg is None:
            break
        method, args, kw = msg
        try:
            conn.send((True, getattr(rt, method)(*args, **kw)))
        except Exception as exc:
            try:
                conn.send((False, exc))
            except Exception:  # an exception that does not pickle: send its words
                conn.send((False, LabkitError(f"{type(exc).__name__}: {exc}")))
    rt.close()
    return 0


if __name__ == "__main__":
    sys.exit(_serve(sys.argv[1], int(sys.argv[2])))
