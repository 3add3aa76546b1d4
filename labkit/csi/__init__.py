"""The Container Storage Interface as code: the gRPC protocol between an orchestrator and a storage driver.

Both sides import it and nothing else of each other: the node's driver and volume plug-in
(:mod:`labkit.node.csi`) and the provisioner in the controller-manager, which finds a driver
through CSIDriver and CSINode objects and then speaks this protocol to it, as Kubernetes'
external-provisioner does with the CSI spec's own package. ``csi.proto`` is the subset labkit
uses, with the spec's field numbers; ``python -m labkit.node.cri.protogen`` regenerates the stubs.
"""

import os

# before grpc is first imported: labkit's native runtime forks in processes that also serve gRPC,
# and gRPC's fork handlers would hang the child (a notebook may import this package first)
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
