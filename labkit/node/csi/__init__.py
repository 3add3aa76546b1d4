"""labkit.node.csi"""

import os

# before grpc is first imported: labkit's native runtime forks in processes that also serve gRPC,
# and gRPC's fork handlers would hang the child (a notebook may import this package first)
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
