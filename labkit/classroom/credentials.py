"""The class's use of the secure cluster: start one, and mint a student's token and kubeconfig.

Kept in one place so the rest of the classroom never depends on how the apiserver authenticates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def secure_cluster(nodes: int, runtime: str | None, name: str, address: str = "127.0.0.1") -> Any:
    """A Cluster with TLS, tokens and RBAC whose components die with this process (the class server)."""
    from labkit.cluster import Cluster

    return Cluster(nodes=nodes, runtime=runtime, name=name, secure=True, keep_state=True, die_with_parent=True,
                   node_grace=40.0, eviction_seconds=None, lease_interval=5.0, address=address)


def student_kubeconfig(cluster: Any, user: str, groups: list[str], namespace: str, path: Path) -> Path:
    """Mint ``user``'s token and write a kubeconfig (CA data, token, namespace) only its owner can read."""
    token = cluster.add_user(user, groups)
    cluster.write_user_kubeconfig(path, user, token, namespace=namespace)
    path.chmod(0o600)
    return path
