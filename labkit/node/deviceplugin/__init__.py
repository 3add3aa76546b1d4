"""Device plugins (``v1beta1`` over gRPC): how GPUs and other devices reach pods.

* :class:`DeviceManager` is the kubelet's side: Registration, ListAndWatch, Allocate.
* :class:`SampleDevicePlugin` advertises simulated GPUs, or real NVIDIA ones when present.
"""

from labkit.node.deviceplugin.manager import DeviceManager
from labkit.node.deviceplugin.sample import SampleDevicePlugin

__all__ = ["DeviceManager", "SampleDevicePlugin"]
