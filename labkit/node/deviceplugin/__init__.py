"""Device plugins (``v1beta1`` over gRPC): how GPUs and other devices reach pods.

* :class:`DeviceManager` is the kubelet's side: Registration, ListAndWatch, Allocate.
* :class:`SampleDevicePlugin` advertises simulated GPUs, or real NVIDIA ones when present.
"""

import os

# before grpc is first imported: labkit's native runtime forks in processes that also serve gRPC,
# and gRPC's fork handlers would hang the child (a notebook may import this package first)
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

from labkit.node.deviceplugin.manager import DeviceManager
from labkit.node.deviceplugin.sample import SampleDevicePlugin

__all__ = ["DeviceManager", "SampleDevicePlugin"]
