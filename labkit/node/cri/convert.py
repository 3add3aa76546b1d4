"""Translate between labkit's Runtime dataclasses and CRI (runtime.v1) protobuf messages.

Both the CRI server (protobuf in, dataclass to the backend) and the RemoteRuntime client
(dataclass in, protobuf on the wire) use these, so the mapping is written once.
"""

from __future__ import annotations

from labkit.node.cri import api_pb2 as pb
from labkit.oci.resources import Resources
from labkit.runtime.base import (
    ContainerConfig,
    ContainerState,
    ContainerStatus,
    Device,
    ImageInfo,
    Mount,
    PodSandboxConfig,
    PodSandboxStatus,
    SandboxState,
)

NS = 1_000_000_000
PIDS_ANNOTATION = "labkit.io/pids-limit"  # CRI has no per-container pids limit; carried as annotation


def to_ns(t: float | None) -> int:
    return int(t * NS) if t else 0


def from_ns(t: int) -> float | None:
    return t / NS if t else None


# --- sandboxes ---------------------------------------------------------------
def sandbox_config_to_pb(c: PodSandboxConfig) -> pb.PodSandboxConfig:
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=c.name, uid=c.uid, namespace=c.namespace),
        hostname=c.hostname or "",
        log_directory=c.log_directory or "",
        labels=c.labels,
        annotations=c.annotations,
    )


def sandbox_config_from_pb(m: pb.PodSandboxConfig) -> PodSandboxConfig:
    return PodSandboxConfig(
        name=m.metadata.name,
        namespace=m.metadata.namespace or "default",
        uid=m.metadata.uid,
        hostname=m.hostname or None,
        labels=dict(m.labels),
        annotations=dict(m.annotations),
        log_directory=m.log_directory or None,
    )


def sandbox_state_to_pb(s: SandboxState) -> int:
    return pb.SANDBOX_READY if s == SandboxState.READY else pb.SANDBOX_NOTREADY


def sandbox_status_to_pb(s: PodSandboxStatus) -> tuple[pb.PodSandboxStatus, dict[str, str]]:
    """The status message plus the ``info`` map (netns path: CRI reports it only in verbose info)."""
    msg = pb.PodSandboxStatus(
        id=s.id,
        metadata=pb.PodSandboxMetadata(name=s.name, namespace=s.namespace),
        state=sandbox_state_to_pb(s.state),
        created_at=to_ns(s.created_at),
        network=pb.PodSandboxNetworkStatus(ip=s.ip or ""),
        labels=s.labels,
    )
    info = {"netnsPath": s.netns_path} if s.netns_path else {}
    return msg, info


def sandbox_status_from_pb(m: pb.PodSandboxStatus, info: dict[str, str]) -> PodSandboxStatus:
    return PodSandboxStatus(
        id=m.id,
        name=m.metadata.name,
        namespace=m.metadata.namespace,
        state=SandboxState.READY if m.state == pb.SANDBOX_READY else SandboxState.NOTREADY,
        created_at=from_ns(m.created_at) or 0.0,
        netns_path=info.get("netnsPath") or None,
        ip=m.network.ip or None,
        labels=dict(m.labels),
    )


def sandbox_to_pb(s: PodSandboxStatus) -> pb.PodSandbox:
    return pb.PodSandbox(
        id=s.id,
        metadata=pb.PodSandboxMetadata(name=s.name, namespace=s.namespace),
        state=sandbox_state_to_pb(s.state),
        created_at=to_ns(s.created_at),
        labels=s.labels,
    )


# --- containers --------------------------------------------------------------
def container_config_to_pb(c: ContainerConfig) -> pb.ContainerConfig:
    annotations = dict(c.annotations)
    if c.resources.pids_limit:
        annotations[PIDS_ANNOTATION] = str(c.resources.pids_limit)
    return pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=c.name),
        image=pb.ImageSpec(image=c.image),
        command=c.command,
        args=c.args,
        working_dir=c.working_dir or "",
        envs=[pb.KeyValue(key=k, value=v) for k, v in c.env.items()],
        mounts=[pb.Mount(container_path=m.container_path, host_path=m.host_path, readonly=m.readonly) for m in c.mounts],
        devices=[
            pb.Device(container_path=d.container_path, host_path=d.host_path, permissions=d.permissions)
            for d in c.devices
        ],
        labels=c.labels,
        annotations=annotations,
        linux=pb.LinuxContainerConfig(
            resources=pb.LinuxContainerResources(
                cpu_period=c.resources.cpu_period_us if c.resources.cpu_quota_us else 0,
                cpu_quota=c.resources.cpu_quota_us or 0,
                memory_limit_in_bytes=c.resources.memory_bytes or 0,
            )
        ),
    )


def container_config_from_pb(m: pb.ContainerConfig) -> ContainerConfig:
    annotations = dict(m.annotations)
    pids = annotations.pop(PIDS_ANNOTATION, None)
    r = m.linux.resources
    return ContainerConfig(
        name=m.metadata.name,
        image=m.image.image,
        command=list(m.command),
        args=list(m.args),
        env={kv.key: kv.value for kv in m.envs},
        working_dir=m.working_dir or None,
        mounts=[Mount(host_path=x.host_path, container_path=x.container_path, readonly=x.readonly) for x in m.mounts],
        devices=[
            Device(host_path=d.host_path, container_path=d.container_path, permissions=d.permissions or "rwm")
            for d in m.devices
        ],
        resources=Resources(
            memory_bytes=r.memory_limit_in_bytes or None,
            cpu_quota_us=r.cpu_quota or None,
            cpu_period_us=r.cpu_period or 100_000,
            pids_limit=int(pids) if pids else None,
        ),
        labels=dict(m.labels),
        annotations=annotations,
    )


_STATE_TO_PB = {
    ContainerState.CREATED: pb.CONTAINER_CREATED,
    ContainerState.RUNNING: pb.CONTAINER_RUNNING,
    ContainerState.EXITED: pb.CONTAINER_EXITED,
    ContainerState.UNKNOWN: pb.CONTAINER_UNKNOWN,
}
_STATE_FROM_PB = {v: k for k, v in _STATE_TO_PB.items()}


def container_state_to_pb(s: ContainerState) -> int:
    return _STATE_TO_PB.get(ContainerState(s), pb.CONTAINER_UNKNOWN)


def container_state_from_pb(v: int) -> ContainerState:
    return _STATE_FROM_PB.get(v, ContainerState.UNKNOWN)


def container_to_pb(s: ContainerStatus) -> pb.Container:
    return pb.Container(
        id=s.id,
        pod_sandbox_id=s.sandbox_id,
        metadata=pb.ContainerMetadata(name=s.name),
        image=pb.ImageSpec(image=s.image),
        image_ref=s.image_ref,
        image_id=s.image_ref,
        state=container_state_to_pb(s.state),
        created_at=to_ns(s.created_at),
        labels=s.labels,
    )


def container_status_to_pb(s: ContainerStatus) -> tuple[pb.ContainerStatus, dict[str, str]]:
    """The status message plus ``info`` (CRI reports the pid only in verbose info)."""
    msg = pb.ContainerStatus(
        id=s.id,
        metadata=pb.ContainerMetadata(name=s.name),
        state=container_state_to_pb(s.state),
        created_at=to_ns(s.created_at),
        started_at=to_ns(s.started_at),
        finished_at=to_ns(s.finished_at),
        exit_code=s.exit_code or 0,
        image=pb.ImageSpec(image=s.image),
        image_ref=s.image_ref,
        image_id=s.image_ref,
        reason=s.reason,
        message=s.message,
        labels=s.labels,
        log_path=s.log_path or "",
    )
    info = {"sandboxID": s.sandbox_id}
    if s.pid:
        info["pid"] = str(s.pid)
    if s.exit_code is not None:
        info["exitCode"] = str(s.exit_code)
    return msg, info


def container_status_from_pb(m: pb.ContainerStatus, info: dict[str, str]) -> ContainerStatus:
    exit_code = info.get("exitCode")
    state = container_state_from_pb(m.state)
    return ContainerStatus(
        id=m.id,
        sandbox_id=info.get("sandboxID", ""),
        name=m.metadata.name,
        image=m.image.image,
        image_ref=m.image_ref,
        state=state,
        created_at=from_ns(m.created_at) or 0.0,
        started_at=from_ns(m.started_at),
        finished_at=from_ns(m.finished_at),
        exit_code=int(exit_code) if exit_code else (m.exit_code if state == ContainerState.EXITED else None),
        reason=m.reason,
        message=m.message,
        pid=int(info["pid"]) if info.get("pid") else None,
        log_path=m.log_path or None,
        labels=dict(m.labels),
    )


# --- images ------------------------------------------------------------------
def image_to_pb(i: ImageInfo) -> pb.Image:
    return pb.Image(id=i.digest, repo_tags=[i.name], repo_digests=[f"{i.name.split(':')[0]}@{i.digest}"], size=i.size)


def image_from_pb(m: pb.Image) -> ImageInfo:
    return ImageInfo(name=m.repo_tags[0] if m.repo_tags else m.id, digest=m.id, size=m.size)
