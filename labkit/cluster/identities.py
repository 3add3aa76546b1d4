"""A secure cluster's identities: its CA, its token file, and one kubeconfig per user and component.

``Cluster(secure=True)`` keeps them in ``<cluster dir>/pki``: the admin (group ``system:masters``),
the scheduler (``system:kube-scheduler``), the controller-manager
(``system:kube-controller-manager``) and each kubelet (``system:node:NAME`` in ``system:nodes``)
get their own token, so the apiserver's Node and RBAC authorizers see each of them as itself.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from labkit.client.kubeconfig import write_kubeconfig
from labkit.controlplane.apiserver.auth.tlsconfig import TLSConfig
from labkit.controlplane.apiserver.auth.tokens import append_token

ADMIN = ("kubernetes-admin", ("system:masters",))
SCHEDULER = ("system:kube-scheduler", ())
CONTROLLER_MANAGER = ("system:kube-controller-manager", ())


def node_user(node: str) -> tuple[str, tuple[str, ...]]:
    return f"system:node:{node}", ("system:nodes",)


class Identities:
    """The files of one secure cluster under ``folder``."""

    def __init__(self, folder: str | os.PathLike, server: str):
        self.dir = Path(folder)
        self.server = server
        self.token_file = self.dir / "tokens.csv"
        self.ca_file = self.dir / "ca.crt"
        self.sa_key_file = self.dir / "sa.key"
        self.tls = TLSConfig(str(self.dir / "apiserver.crt"), str(self.dir / "apiserver.key"), str(self.ca_file))

    def create(self, extra_hosts: list[str] | None = None) -> None:
        """A new CA, serving certificate and (empty) token file."""
        from labkit.controlplane.apiserver.auth.pki import make_cluster_pki

        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self.tls = make_cluster_pki(self.dir, extra_hosts)
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)

    def apiserver_args(self) -> list[str]:
        return ["--tls-cert-file", self.tls.cert_file, "--tls-private-key-file", self.tls.key_file,
                "--client-ca-file", str(self.ca_file), "--token-auth-file", str(self.token_file),
                "--authorization-mode", "Node,RBAC", "--service-account-signing-key-file", str(self.sa_key_file)]

    def add_user(self, name: str, groups: list[str] | tuple[str, ...] = ()) -> str:
        """A new token for ``name`` in ``groups``; the running apiserver accepts it at once."""
        return append_token(self.token_file, name, list(groups))

    def write_kubeconfig(self, path: str | os.PathLike, user: str, token: str, namespace: str = "default",
                         cluster_name: str = "labkit", embed_ca: bool = True) -> Path:
        """A kubeconfig for one user: this cluster's CA (embedded, or by path), the token, a namespace."""
        ca = self.ca_file.read_bytes()
        return write_kubeconfig(path, self.server, cluster_name, token=token, ca_data=ca if embed_ca else None,
                                ca_file=None if embed_ca else self.ca_file, namespace=namespace, user=user)

    def component_kubeconfig(self, component: str, user: str, groups: tuple[str, ...]) -> str:
        """A new token and kubeconfig (CA by path) for one component; returns the kubeconfig's path."""
        token = self.add_user(user, groups)
        path = self.dir / "kubeconfigs" / f"{component}.kubeconfig"
        self.write_kubeconfig(path, user, token, embed_ca=False)
        return str(path)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))
