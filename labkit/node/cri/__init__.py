"""CRI: the kubelet reaches its container runtime only through ``runtime.v1`` gRPC on a unix socket.

* :mod:`labkit.node.cri.server` serves RuntimeService + ImageService in front of any labkit backend.
* :class:`RemoteRuntime` is the kubelet's client: the :class:`labkit.runtime.base.Runtime`
  interface, every method one RPC.
* :func:`crictl` lists pods, containers and images over the socket, like ``crictl``.

Names are imported lazily so that the backend worker (:mod:`labkit.node.cri.worker`), which
must not load gRPC, can live in this package.
"""

from __future__ import annotations

import importlib
import os

# before grpc is first imported: labkit's native runtime forks in processes that also serve gRPC,
# and gRPC's fork handlers would hang the child (a notebook may import this package first)
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

_LAZY = {
    "CRIServer": "labkit.node.cri.server",
    "serve": "labkit.node.cri.server",
    "RemoteRuntime": "labkit.node.cri.remote",
    "crictl": "labkit.node.cri.crictl",
    "ProcessRuntime": "labkit.node.cri.worker",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name == "crictl":  # the module is callable: it is the function too
        return importlib.import_module("labkit.node.cri.crictl")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'labkit.node.cri' has no attribute {name!r}")
