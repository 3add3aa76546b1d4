"""Shared helpers for the Node plug-point tests (test_node_*): a tiny in-memory Runtime.

The CRI tests check the protocol boundary, not a backend, so they use this stand-in; the
real backends are exercised over the same socket when ``labkit.runtime.get`` can build them.
"""

from __future__ import annotations

import itertools
import time

from labkit.errors import NotFound
from labkit.runtime.base import (
    ContainerState,
    ContainerStats,
    ContainerStatus,
    ExecResult,
    ImageInfo,
    PodSandboxStatus,
    Runtime,
    SandboxState,
    VersionInfo,
)


class MemoryRuntime(Runtime):
    """Keeps sandboxes and containers in dicts; 'runs' nothing. Only for protocol tests."""

    name = "memory"

    def __init__(self) -> None:
        self.images = {"busybox:latest": ImageInfo("busybox:latest", "sha256:" + "ab" * 32, 1_200_000)}
        self.sandboxes: dict[str, PodSandboxStatus] = {}
        self.containers: dict[str, ContainerStatus] = {}
        self.configs: dict[str, object] = {}
        self._ids = itertools.count(1)

    def version(self) -> VersionInfo:
        return VersionInfo("memory", "0.0")

    def list_images(self):
        return list(self.images.values())

    def image_status(self, image):
        return self.images.get(image)

    def pull_image(self, image):
        if image not in self.images:
            raise NotFound(f"image {image!r} is not in the local store")
        return self.images[image]

    def run_pod_sandbox(self, config):
        sid = f"pod{next(self._ids):04d}" + "0" * 56
        self.sandboxes[sid] = PodSandboxStatus(
            sid, config.name, config.namespace, SandboxState.READY, time.time(),
            netns_path=f"/run/netns/labkit-{sid[:8]}", labels=dict(config.labels),
        )
        return sid

    def stop_pod_sandbox(self, sandbox_id):
        self.pod_sandbox_status(sandbox_id).state = SandboxState.NOTREADY

    def remove_pod_sandbox(self, sandbox_id):
        if self.sandboxes.pop(sandbox_id, None) is None:
            raise NotFound(sandbox_id)

    def pod_sandbox_status(self, sandbox_id):
        try:
            return self.sandboxes[sandbox_id]
        except KeyError:
            raise NotFound(f"sandbox {sandbox_id} not found") from None

    def list_pod_sandboxes(self):
        return list(self.sandboxes.values())

    def create_container(self, sandbox_id, config, sandbox_config):
        self.pod_sandbox_status(sandbox_id)
        cid = f"ctr{next(self._ids):04d}" + "0" * 56
        self.configs[cid] = config
        self.containers[cid] = ContainerStatus(
            cid, sandbox_id, config.name, config.image, self.images[config.image].digest,
            ContainerState.CREATED, time.time(), labels=dict(config.labels),
        )
        return cid

    def start_container(self, container_id):
        c = self.container_status(container_id)
        c.state, c.started_at, c.pid = ContainerState.RUNNING, time.time(), 4242

    def stop_container(self, container_id, timeout=10.0):
        c = self.container_status(container_id)
        c.state, c.finished_at, c.exit_code, c.reason = ContainerState.EXITED, time.time(), 0, "Completed"

    def remove_container(self, container_id):
        if self.containers.pop(container_id, None) is None:
            raise NotFound(container_id)

    def container_status(self, container_id):
        try:
            return self.containers[container_id]
        except KeyError:
            raise NotFound(f"container {container_id} not found") from None

    def list_containers(self, sandbox_id=None):
        return [c for c in self.containers.values() if sandbox_id in (None, c.sandbox_id)]

    def logs(self, container_id):
        return f"log of {self.container_status(container_id).name}\n".encode()

    def exec_sync(self, container_id, cmd, timeout=10.0):
        return ExecResult(0, " ".join(cmd).encode(), b"")

    def container_stats(self, container_id):
        return ContainerStats(container_id, memory_bytes=1 << 20, cpu_usage_ns=5000)
