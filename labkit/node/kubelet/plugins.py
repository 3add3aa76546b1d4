"""The kubelet's plug points other than the runtime: network (CNI), volumes (CSI), devices.

The kubelet calls these hooks around a pod's sandbox and containers. The defaults do nothing
(host-less pods, no volumes, no devices); ``labkit.node.cni``, ``labkit.node.csi`` and
``labkit.node.deviceplugin`` provide the real ones. The container runtime itself is reached
through :class:`labkit.runtime.base.Runtime` (in-process or over the CRI gRPC socket).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from labkit.runtime.base import Device, Mount, PodSandboxStatus


class PluginError(Exception):
    """A plug point failed; the kubelet records it as an Event on the pod (reason = .reason)."""

    def __init__(self, message: str, reason: str = "FailedPlugin"):
        super().__init__(message)
        self.reason = reason


class NetworkPlugin:
    """CNI: give a sandbox's network namespace an interface and an IP."""

    def setup_pod(self, pod: dict, sandbox: PodSandboxStatus) -> str | None:
        """Return the pod IP, or None when the pod has no network of its own."""
        return None

    def teardown_pod(self, pod: dict, sandbox: PodSandboxStatus) -> None:
        pass

    def prepare_node(self, node: dict | None) -> None:
        """One-time network set-up of the node (its namespace, bridge, routes, service rules), done
        when the kubelet starts, as on a real node, so the first pod does not pay for it.

        ``node`` is this kubelet's Node object (None before it is registered). Raise
        :class:`PluginError` with reason ``NetworkNotReady`` while it cannot be done yet (no
        podCIDR assigned): the kubelet reports the Node not Ready and tries again. Any other
        reason is final: the Node goes Ready and each pod reports the error when it needs the network."""


class VolumePlugin:
    """CSI: make the pod's volumes available on the host before its containers start."""

    def mount_pod_volumes(self, pod: dict) -> dict[str, str]:
        """Return volume name -> host path for every volume of the pod this plugin handles."""
        return {}

    def unmount_pod_volumes(self, pod: dict) -> None:
        pass


@dataclass
class DeviceAllocation:
    env: dict[str, str] = field(default_factory=dict)
    devices: list[Device] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)


class DevicePlugins:
    """Device plugin manager: extended resources for the Node, and Allocate for containers."""

    def capacity(self) -> dict[str, int]:
        """Extended resource name -> healthy device count (allocatable)."""
        return {}

    def total(self) -> dict[str, int]:
        """Extended resource name -> all devices, healthy or not (the Node's capacity)."""
        return self.capacity()

    def allocate(self, pod: dict, container: dict) -> DeviceAllocation:
        return DeviceAllocation()

    def release_pod(self, pod: dict) -> None:
        pass


@dataclass
class NodePlugins:
    network: NetworkPlugin = field(default_factory=NetworkPlugin)
    volumes: VolumePlugin = field(default_factory=VolumePlugin)
    devices: DevicePlugins = field(default_factory=DevicePlugins)
