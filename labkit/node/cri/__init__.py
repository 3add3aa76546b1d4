"""CRI: the kubelet reaches its container runtime only through ``runtime.v1`` gRPC on a unix socket.

* :mod:`labkit.node.cri.server` serves RuntimeService + ImageService in front of any labkit backend.
* :class:`RemoteRuntime` is the kubelet's client: the :class:`labkit.runtime.base.Runtime`
  interface, every method one RPC.
* :func:`crictl` lists pods, containers and images over the socket, like ``crictl``.
"""

from labkit.node.cri.crictl import crictl
from labkit.node.cri.remote import RemoteRuntime
from labkit.node.cri.server import CRIServer, serve

__all__ = ["CRIServer", "RemoteRuntime", "crictl", "serve"]
