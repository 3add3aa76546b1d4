"""The class's use of the secure cluster: start one, and mint a student's token and kubeconfig.

Kept in one place so the rest of the classroom never depends on how the apiserver authenticates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labkit.client.kubeconfig import write_kubeconfig


def secure_cluster(nodes: int, runtime: str | None, name: str, address: str = "127.0.0.1") -> Any:
    """A Cluster with TLS, tokens and Node,RBAC whose components die with this process (the class server).

    Its apiserver listens on ``address`` (students' machines and joining nodes connect there; the
    serving certificate names it)."""
    from labkit.cluster import Cluster

    return Cluster(nodes=nodes, runtime=runtime, name=name, secure=True, bind=address, keep_state=True,
                   die_with_parent=True, node_grace=40.0, eviction_seconds=None, lease_interval=5.0)


def ca_certificate(cluster: Any) -> bytes:
    return Path(cluster.identities.ca_file).read_bytes()


def student_kubeconfig(cluster: Any, server: str, user: str, groups: list[str], namespace: str, path: Path) -> Path:
    """Mint ``user``'s token and write a kubeconfig (CA data, token, namespace) only its owner can read."""
    token = cluster.add_user(user, groups)
    write_kubeconfig(path, server, "labkit-class", token=token, ca_data=ca_certificate(cluster), namespace=namespace,
                     user=user)
    path.chmod(0o600)
    return path
