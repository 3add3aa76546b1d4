"""The container runtime interface every labkit backend implements.

Its shape follows Kubernetes' CRI (``runtime.v1.RuntimeService``): a *pod sandbox* holds the
namespaces that a pod's containers share (network above all), and containers are created,
started, stopped and removed inside it. The kubelet only ever sees this interface, whether the
backend is labkit's own native runtime, runc/crun, Docker or the simulated runtime, and whether
it is called in-process or over the CRI gRPC socket (``labkit.node.cri``).
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from labkit.oci.resources import Resources

if TYPE_CHECKING:
    from labkit.runtime.streaming import ExecProcess


class ContainerState(enum.StrEnum):
    CREATED = "CONTAINER_CREATED"
    RUNNING = "CONTAINER_RUNNING"
    EXITED = "CONTAINER_EXITED"
    UNKNOWN = "CONTAINER_UNKNOWN"


class SandboxState(enum.StrEnum):
    READY = "SANDBOX_READY"
    NOTREADY = "SANDBOX_NOTREADY"


@dataclass
class Mount:
    host_path: str
    container_path: str
    readonly: bool = False


@dataclass
class Device:
    host_path: str
    container_path: str
    permissions: str = "rwm"


@dataclass
class PodSandboxConfig:
    name: str
    namespace: str = "default"
    uid: str = ""
    hostname: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    log_directory: str | None = None


@dataclass
class ContainerConfig:
    name: str
    image: str
    command: list[str] = field(default_factory=list)  # entrypoint; empty = image default
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    mounts: list[Mount] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    resources: Resources = field(default_factory=Resources)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass
class PodSandboxStatus:
    id: str
    name: str
    namespace: str
    state: SandboxState
    created_at: float
    netns_path: str | None = None  # where CNI plugins configure the pod's network
    ip: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ContainerStatus:
    id: str
    sandbox_id: str
    name: str
    image: str
    image_ref: str  # content digest, e.g. "sha256:..."
    state: ContainerState
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    reason: str = ""  # "Completed", "Error", "OOMKilled"
    message: str = ""
    pid: int | None = None  # host PID of the container's first process
    log_path: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ContainerStats:
    id: str
    memory_bytes: int | None = None
    cpu_usage_ns: int | None = None
    pids: int | None = None


@dataclass
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


@dataclass
class ImageInfo:
    name: str
    digest: str  # "sha256:..." of the image manifest
    size: int


@dataclass
class VersionInfo:
    runtime_name: str  # what really runs the containers, e.g. "native", "runc", "docker"
    runtime_version: str
    api_version: str = "v1"


class Runtime(abc.ABC):
    """A container runtime, CRI-shaped. Subclasses are the backends."""

    #: short backend name used by ``--runtime`` and printed in every lab output
    name: str = "?"
    #: False where ``exec_spawn`` can only refuse (nothing runs): CRI ``Exec`` then refuses at once
    streams_exec: bool = True

    # --- identity -------------------------------------------------------
    @abc.abstractmethod
    def version(self) -> VersionInfo: ...

    # --- images ---------------------------------------------------------
    @abc.abstractmethod
    def list_images(self) -> list[ImageInfo]: ...

    @abc.abstractmethod
    def image_status(self, image: str) -> ImageInfo | None: ...

    @abc.abstractmethod
    def pull_image(self, image: str) -> ImageInfo:
        """Make ``image`` available to this backend from labkit's local image store."""

    # --- sandboxes ------------------------------------------------------
    @abc.abstractmethod
    def run_pod_sandbox(self, config: PodSandboxConfig) -> str: ...

    @abc.abstractmethod
    def stop_pod_sandbox(self, sandbox_id: str) -> None: ...

    @abc.abstractmethod
    def remove_pod_sandbox(self, sandbox_id: str) -> None: ...

    @abc.abstractmethod
    def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus: ...

    @abc.abstractmethod
    def list_pod_sandboxes(self) -> list[PodSandboxStatus]: ...

    # --- containers -----------------------------------------------------
    @abc.abstractmethod
    def create_container(
        self, sandbox_id: str, config: ContainerConfig, sandbox_config: PodSandboxConfig
    ) -> str: ...

    @abc.abstractmethod
    def start_container(self, container_id: str) -> None: ...

    @abc.abstractmethod
    def stop_container(self, container_id: str, timeout: float = 10.0) -> None: ...

    @abc.abstractmethod
    def remove_container(self, container_id: str) -> None: ...

    @abc.abstractmethod
    def container_status(self, container_id: str) -> ContainerStatus: ...

    @abc.abstractmethod
    def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]: ...

    @abc.abstractmethod
    def logs(self, container_id: str) -> bytes: ...

    @abc.abstractmethod
    def exec_sync(self, container_id: str, cmd: list[str], timeout: float = 10.0) -> ExecResult: ...

    @abc.abstractmethod
    def container_stats(self, container_id: str) -> ContainerStats: ...

    # --- streaming (CRI Exec) -------------------------------------------
    def exec_spawn(self, container_id: str, cmd: list[str], stdin: int, stdout: int, stderr: int,
                   tty: bool = False) -> ExecProcess:
        """Start ``cmd`` in the container with these descriptors as its stdio; an ``ExecProcess``.

        The streaming server calls it once the client is connected. Backends that run
        something override it; the others say why they cannot.
        """
        from labkit.errors import Unsupported

        raise Unsupported(f"the {self.name} runtime cannot stream exec; use a runtime that runs containers "
                          "(native, runc, crun, docker or simulated)")

    def port_forward(self, sandbox_id: str) -> str:
        """CRI ``PortForward``: a URL of this runtime's streaming server that forwards into the pod's netns."""
        from labkit.runtime import portforward, streaming

        sb = self.pod_sandbox_status(sandbox_id)
        netns = sb.netns_path
        return streaming.shared().portforward_url(lambda port: portforward.connect_in_netns(netns, port),
                                                  f"{sb.namespace}/{sb.name}")

    def exec(self, container_id: str, cmd: list[str], tty: bool = False, stdin: bool = False,
             stdout: bool = True, stderr: bool = True) -> str:
        """CRI ``Exec``: a URL of this runtime's streaming server that runs ``cmd`` once connected."""
        from labkit.errors import LabkitError
        from labkit.runtime import streaming

        if not cmd:
            raise LabkitError("exec needs a command, e.g. kubectl exec POD -- sh")
        st = self.container_status(container_id)
        if st.state != ContainerState.RUNNING:
            raise LabkitError(f"container {st.name or container_id[:12]} is not running ({st.state}); "
                              "exec needs a running container")
        if not self.streams_exec or type(self).exec_spawn is Runtime.exec_spawn:
            self.exec_spawn(container_id, cmd, -1, -1, -1, tty)  # it raises: say so now, not after the upgrade
        return streaming.shared().exec_url(
            lambda i, o, e, t: self.exec_spawn(container_id, list(cmd), i, o, e, t),
            list(cmd), tty=tty, stdin=stdin, stdout=stdout, stderr=stderr)

    def close(self) -> None:
        """Release clients and sockets; containers keep running."""
