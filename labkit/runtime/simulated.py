"""The ``simulated`` backend: the same CRI calls with no isolation at all — and it says so.

Two modes, both honest about what they are:

* :class:`SimulatedRuntime` runs each container's command as a *plain host process* (no
  namespaces, no cgroups, no image root). It works without root and on macOS or Windows/WSL, so
  every lab still runs; ``echo $$`` prints a host PID, which is the point the labs make.
* :class:`HollowRuntime` runs nothing: containers are bookkeeping only (like KWOK's hollow
  nodes), so one process can pretend to be thousands of kubelets for the scale labs.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.errors import LabkitError, NotFound
from labkit.runtime import imagesource, records
from labkit.runtime.base import (
    ContainerConfig,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    ExecResult,
    ImageInfo,
    PodSandboxConfig,
    PodSandboxStatus,
    Runtime,
    SandboxState,
    VersionInfo,
)
from labkit.runtime.hostbackend import LocalRuntime

if TYPE_CHECKING:
    from labkit.runtime.streaming import ExecProcess

NOTICE = "simulated runtime: plain host processes, no namespaces, no cgroups, no image root"


def _image_info(name: str) -> ImageInfo:
    """Use labkit's image store when it works here; otherwise a name with no digest (said plainly)."""
    try:
        return imagesource.pull(name)
    except NotFound:
        raise
    except Exception:  # noqa: BLE001 - no image store on this host: the simulated runtime still runs
        return ImageInfo(name=name, digest="", size=0)


class SimulatedRuntime(LocalRuntime):
    """Containers as plain processes; the shim still records exit codes and logs."""

    name = "simulated"
    notice = NOTICE
    isolated = False
    shim_at_create = False

    def version(self) -> VersionInfo:
        return VersionInfo(runtime_name="simulated",
                           runtime_version=f"host processes on {platform.system()} (no isolation)")

    def list_images(self) -> list[ImageInfo]:
        try:
            return imagesource.list_images()
        except Exception:  # noqa: BLE001
            return []

    def image_status(self, image: str) -> ImageInfo | None:
        try:
            return imagesource.status(image)
        except Exception:  # noqa: BLE001
            return None

    def pull_image(self, image: str) -> ImageInfo:
        return _image_info(image)

    def _prepare(self, cdir: Path, cid: str, config: ContainerConfig, sandbox: dict[str, Any]) -> dict[str, Any]:
        argv = list(config.command) + list(config.args)
        if not argv:
            raise LabkitError(f"the simulated runtime needs a command for {config.image!r}; e.g. -- sh -c 'echo hi'")
        info = _image_info(config.image)
        work = cdir / "work"
        work.mkdir()
        env = dict(os.environ)
        env.update(config.env)
        env["LABKIT_RUNTIME"] = "simulated"
        return {"image_ref": info.digest, "argv": argv,
                "shim": {"mode": "exec", "argv": argv, "log": str(cdir / "container.log"),
                         "cwd": config.working_dir if config.working_dir and os.path.isdir(config.working_dir)
                         else str(work), "env": env}}

    def _start(self, rec: dict[str, Any]) -> None:
        self._launch(self.containers / rec["id"], rec)

    def _signal(self, rec: dict[str, Any], sig: int) -> None:
        # no pid namespace: signal the whole process group the shim made for the command
        pid = self._pid(self.containers / rec["id"])
        if pid is None:
            return
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            os.kill(pid, sig)

    def _delete(self, rec: dict[str, Any]) -> None:
        """Background processes the command left behind die with the "container" too."""
        import signal

        pid = self._pid(self.containers / rec["id"])
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def exec_sync(self, container_id: str, cmd: list[str], timeout: float = 10.0) -> ExecResult:
        import subprocess

        self._container(container_id)
        try:
            out = subprocess.run(cmd, capture_output=True, timeout=timeout)
        except FileNotFoundError:
            return ExecResult(127, b"", f"{cmd[0]}: not found on this host".encode())
        except subprocess.TimeoutExpired:
            return ExecResult(124, b"", b"timed out")
        return ExecResult(out.returncode, out.stdout, out.stderr)

    def exec_spawn(self, container_id: str, cmd: list[str], stdin: int, stdout: int, stderr: int,
                   tty: bool = False) -> ExecProcess:
        """A plain host process (no isolation, as everything in this backend)."""
        from labkit.runtime import streaming

        self._container(container_id)
        try:
            return streaming.popen(list(cmd), stdin, stdout, stderr, tty)
        except FileNotFoundError:
            raise LabkitError(f"{cmd[0]}: not found on this host (the simulated runtime runs host programs)") from None


class HollowRuntime(Runtime):
    """Bookkeeping-only containers, all in memory: thousands per process, nothing runs."""

    name = "simulated"
    notice = "hollow simulated runtime: bookkeeping only, nothing runs"
    streams_exec = False

    def __init__(self) -> None:
        self._sandboxes: dict[str, PodSandboxStatus] = {}
        self._containers: dict[str, ContainerStatus] = {}

    def version(self) -> VersionInfo:
        return VersionInfo(runtime_name="simulated", runtime_version="hollow (bookkeeping only, nothing runs)")

    def list_images(self) -> list[ImageInfo]:
        return []

    def image_status(self, image: str) -> ImageInfo | None:
        return ImageInfo(name=image, digest="", size=0)

    def pull_image(self, image: str) -> ImageInfo:
        return ImageInfo(name=image, digest="", size=0)

    def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        sid = records.new_id()
        self._sandboxes[sid] = PodSandboxStatus(id=sid, name=config.name, namespace=config.namespace,
                                                state=SandboxState.READY, created_at=time.time(),
                                                labels=dict(config.labels))
        return sid

    def _sb(self, sid: str) -> PodSandboxStatus:
        try:
            return self._sandboxes[sid]
        except KeyError:
            raise NotFound(f"no pod sandbox {sid!r} in the hollow runtime") from None

    def stop_pod_sandbox(self, sandbox_id: str) -> None:
        for c in self.list_containers(sandbox_id):
            self.stop_container(c.id)
        self._sb(sandbox_id).state = SandboxState.NOTREADY

    def remove_pod_sandbox(self, sandbox_id: str) -> None:
        for c in self.list_containers(sandbox_id):
            self._containers.pop(c.id, None)
        self._sandboxes.pop(sandbox_id, None)

    def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus:
        return self._sb(sandbox_id)

    def list_pod_sandboxes(self) -> list[PodSandboxStatus]:
        return list(self._sandboxes.values())

    def create_container(self, sandbox_id: str, config: ContainerConfig, sandbox_config: PodSandboxConfig) -> str:
        self._sb(sandbox_id)
        cid = records.new_id()
        self._containers[cid] = ContainerStatus(id=cid, sandbox_id=sandbox_id, name=config.name, image=config.image,
                                                image_ref="", state=ContainerState.CREATED, created_at=time.time(),
                                                labels=dict(config.labels))
        return cid

    def _c(self, cid: str) -> ContainerStatus:
        try:
            return self._containers[cid]
        except KeyError:
            raise NotFound(f"no container {cid!r} in the hollow runtime") from None

    def start_container(self, container_id: str) -> None:
        c = self._c(container_id)
        c.state, c.started_at = ContainerState.RUNNING, time.time()

    def stop_container(self, container_id: str, timeout: float = 10.0) -> None:
        c = self._c(container_id)
        if c.state == ContainerState.RUNNING:
            c.state, c.finished_at, c.exit_code, c.reason = ContainerState.EXITED, time.time(), 0, "Completed"

    def remove_container(self, container_id: str) -> None:
        self._containers.pop(container_id, None)

    def container_status(self, container_id: str) -> ContainerStatus:
        return self._c(container_id)

    def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        return [c for c in self._containers.values() if sandbox_id is None or c.sandbox_id == sandbox_id]

    def logs(self, container_id: str) -> bytes:
        self._c(container_id)
        return b""

    def exec_sync(self, container_id: str, cmd: list[str], timeout: float = 10.0) -> ExecResult:
        self._c(container_id)
        return ExecResult(0, b"", b"hollow container: nothing runs")

    def exec_spawn(self, container_id: str, cmd: list[str], stdin: int, stdout: int, stderr: int,
                   tty: bool = False) -> ExecProcess:
        from labkit.errors import Unsupported

        self._c(container_id)
        raise Unsupported("this is a hollow node: its containers are bookkeeping only and run no process to "
                          "exec into; use a node with a real runtime")

    def container_stats(self, container_id: str) -> ContainerStats:
        self._c(container_id)
        return ContainerStats(id=container_id, memory_bytes=0, cpu_usage_ns=0, pids=0)

