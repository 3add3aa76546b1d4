"""Authentication: who sent a request, from its bearer token or its client certificate.

Tried in kube-apiserver's order: a client certificate signed by ``--client-ca-file`` (user = CN,
groups = O), then a bearer token from ``--token-auth-file``, then a ServiceAccount token this
cluster signed. No credentials, or credentials nobody accepts, is a 401.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from . import bootstraptokens
from .bootstraptokens import SecretGetter
from .tokens import TokenFile
from .user import UserInfo

if TYPE_CHECKING:
    from .serviceaccounts import ServiceAccountTokens

# (namespace, name) -> the ServiceAccount's uid, or None when it does not exist
ServiceAccountUID = Callable[[str, str], Awaitable["str | None"]]


def bearer_token(http: web.Request) -> str | None:
    auth = http.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _cert_user(http: web.Request) -> UserInfo | None:
    transport = http.transport
    cert = transport.get_extra_info("peercert") if transport is not None else None
    if not cert:
        return None
    cn, orgs = "", []
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                cn = value
            elif key == "organizationName":
                orgs.append(value)
    return UserInfo(cn, "", tuple(orgs)) if cn else None


class Authenticator:
    """Turns a request into a :class:`UserInfo` (with ``system:authenticated``), or None."""

    def __init__(self, tokens: TokenFile | None, service_accounts: Callable[[], ServiceAccountTokens],
                 sa_uid: ServiceAccountUID, client_certs: bool = False,
                 bootstrap_secret: SecretGetter | None = None):
        self.tokens, self.service_accounts, self.sa_uid = tokens, service_accounts, sa_uid
        self.client_certs = client_certs
        self.bootstrap_secret = bootstrap_secret  # bootstrap tokens (labkit node join), when given

    async def authenticate(self, http: web.Request) -> UserInfo | None:
        if self.client_certs:
            user = _cert_user(http)
            if user is not None:
                return user.with_authenticated()
        token = bearer_token(http)
        if token is None:
            return None
        return await self.token_user(token)

    async def token_user(self, token: str) -> UserInfo | None:
        if self.tokens is not None:
            user = self.tokens.lookup(token)
            if user is not None:
                return user.with_authenticated()
        if self.bootstrap_secret is not None and bootstraptokens.TOKEN.match(token):
            return await bootstraptokens.user(token, self.bootstrap_secret)
        if token.count(".") == 2:
            sa = self.service_accounts()
            claims = sa.verify(token)
            if claims is not None:
                user = sa.user(claims)
                k = claims["kubernetes.io"]
                uid = await self.sa_uid(k["namespace"], k["serviceaccount"]["name"])
                if uid is not None and uid == (k["serviceaccount"].get("uid") or uid):
                    return user
        return None
