"""Wiring authentication and authorization into one APIServer: its options, its checks, its filter."""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import bootstrap
from . import node as node_authz
from .middleware import AuthFilter, parse_modes
from .rbac import PREFIXES, RBACAuthorizer
from .tlsconfig import TLSConfig

if TYPE_CHECKING:
    from ..server import APIServer


@dataclass
class AuthOptions:
    """kube-apiserver's flags for who may connect and what they may do."""
    tls: TLSConfig | None = None
    token_file: str | None = None
    authorization_mode: tuple[str, ...] = ("AlwaysAllow",)
    service_account_key_file: str | None = None

    @property
    def authenticating(self) -> bool:
        return self.token_file is not None or (self.tls is not None and self.tls.client_ca_file is not None)


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check(host: str, tls: TLSConfig | None, token_file: str | os.PathLike | None,
          authorization_mode: str | tuple[str, ...] | list[str]) -> AuthOptions:
    """The options, or a ValueError that says what to add: off loopback, TLS and authentication are required."""
    modes = parse_modes(authorization_mode)
    opts = AuthOptions(tls, str(token_file) if token_file else None, modes)
    if tls is not None:
        for f in (tls.cert_file, tls.key_file, *([tls.client_ca_file] if tls.client_ca_file else [])):
            if not os.path.exists(f):
                raise ValueError(f"TLS file {f} does not exist")
    if token_file is not None and not os.path.exists(token_file):
        raise ValueError(f"no token file at {token_file}: write one line per user, token,user,uid,\"group1,group2\"")
    if not loopback(host):
        missing = [what for what, ok in (("TLS (--tls-cert-file and --tls-private-key-file)", tls is not None),
                                         ("authentication (--token-auth-file or --client-ca-file)",
                                          opts.authenticating),
                                         ("an authorization mode other than AlwaysAllow (e.g. Node,RBAC)",
                                          "AlwaysAllow" not in modes))
                   if not ok]
        if missing:
            raise ValueError(f"refusing to listen on {host} without " + ", ".join(missing)
                             + ": anyone who can reach that address could do anything to the cluster. "
                             "Listen on 127.0.0.1, or use labkit.Cluster(secure=True), which sets all of them up")
    if "RBAC" in modes or "Node" in modes:
        if not opts.authenticating:
            raise ValueError(f"authorization mode {','.join(modes)} needs authentication: give a token file "
                             "(--token-auth-file) or a client CA (--client-ca-file)")
    return opts


def ensure_bootstrap_policy(server: APIServer) -> None:
    """Write the default ClusterRoles and ClusterRoleBindings the store lacks (as kube-apiserver does at start)."""
    from ..errors import StatusError
    from ..resources import BY_PLURAL

    for plural, objs in (("clusterroles", bootstrap.cluster_roles()),
                         ("clusterrolebindings", bootstrap.cluster_role_bindings())):
        rt = BY_PLURAL[plural]
        for obj in objs:
            if server.store.get(rt.key(None, obj["metadata"]["name"])) is None:
                try:
                    server.registry.create(rt, None, obj)
                except StatusError:
                    pass


def make_filter(server: APIServer, opts: AuthOptions) -> AuthFilter:
    """The filter for ``server``: its authenticator (None without authentication) and authorizers."""
    from .authn import Authenticator
    from .tokens import TokenFile

    rbac = RBACAuthorizer()
    if "RBAC" in opts.authorization_mode:
        ensure_bootstrap_policy(server)
        for prefix in PREFIXES.values():
            kvs, _ = server.store.list(prefix)
            rbac.load((kv.key, kv.value) for kv in kvs)
        assert server.hub is not None
        server.hub.listeners.append(rbac.watch)
    made: list = []

    def sa_tokens():  # noqa: ANN202 - the signer, made on first use (it loads cryptography)
        if not made:
            from .serviceaccounts import ServiceAccountTokens
            made.append(ServiceAccountTokens(opts.service_account_key_file))
        return made[0]

    async def sa_uid(namespace: str, name: str) -> str | None:
        kv = await server.calls.call(server.store.get, f"/registry/serviceaccounts/{namespace}/{name}")
        if kv is None:
            return None
        return (json.loads(kv.value).get("metadata") or {}).get("uid") or ""

    async def pod_node(namespace: str, name: str) -> str | None:
        key = f"/registry/pods/{namespace}/{name}"
        index = server.pods_by_node
        if index is not None and await index.ensure():
            return index.node_of.get(key)
        kv = await server.calls.call(server.store.get, key)
        return None if kv is None else (node_authz.decode(kv.value).get("spec") or {}).get("nodeName", "")

    async def used_by(node: str, resource: str, namespace: str, name: str) -> bool:
        index = server.pods_by_node
        if index is None or not await index.ensure():
            return False
        prefix = f"/registry/pods/{namespace}/"
        for key in [k for k in index.keys.get(node, ()) if k.startswith(prefix)]:
            kv = await server.calls.call(server.store.get, key)
            if kv is not None and node_authz.pod_uses(node_authz.decode(kv.value), resource, name):
                return True
        return False

    async def bootstrap_secret(name: str) -> dict | None:  # kube-system's bootstrap-token-ID Secrets
        kv = await server.calls.call(server.store.get, f"/registry/secrets/kube-system/{name}")
        return None if kv is None else json.loads(kv.value)

    authn = None
    if opts.authenticating:
        tokens = TokenFile(opts.token_file) if opts.token_file else None
        authn = Authenticator(tokens, sa_tokens, sa_uid, client_certs=bool(opts.tls and opts.tls.client_ca_file),
                              bootstrap_secret=bootstrap_secret)
    return AuthFilter(authn, opts.authorization_mode, rbac, sa_tokens, sa_uid, pod_node, used_by)
