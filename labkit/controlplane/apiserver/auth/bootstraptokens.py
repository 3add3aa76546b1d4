"""Bootstrap tokens, as kube-apiserver's ``--enable-bootstrap-token-auth`` reads them.

A token ``ID.SECRET`` (6 and 16 lower-case letters or digits) is good while the Secret
``kube-system/bootstrap-token-ID`` of type ``bootstrap.kubernetes.io/token`` says
``usage-bootstrap-authentication: "true"``, holds the same secret and has not expired. The user is
``system:bootstrap:ID`` in ``system:bootstrappers`` plus the Secret's ``auth-extra-groups``: enough to
file a node's certificate request (``labkit node join``), nothing more unless RBAC says so.
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from .user import UserInfo

TOKEN = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
SECRET_TYPE = "bootstrap.kubernetes.io/token"
BOOTSTRAPPERS = "system:bootstrappers"

# the Secret kube-system/NAME as a dict, or None when there is none
SecretGetter = Callable[[str], Awaitable["dict | None"]]


def _field(secret: dict, key: str) -> str:
    raw = (secret.get("data") or {}).get(key)
    try:
        return base64.b64decode(raw).decode() if raw else ""
    except (ValueError, UnicodeDecodeError):
        return ""


async def user(token: str, get_secret: SecretGetter) -> UserInfo | None:
    """The bootstrap user ``token`` names, or None when it is not a valid, unexpired bootstrap token."""
    m = TOKEN.match(token)
    if not m:
        return None
    tid, secret_part = m.groups()
    secret = await get_secret(f"bootstrap-token-{tid}")
    if not secret or secret.get("type") != SECRET_TYPE or (secret.get("metadata") or {}).get("deletionTimestamp"):
        return None
    if _field(secret, "usage-bootstrap-authentication") != "true" or _field(secret, "token-id") != tid:
        return None
    if not hmac.compare_digest(_field(secret, "token-secret"), secret_part):
        return None
    expires = _field(secret, "expiration")
    if expires:
        try:
            when = datetime.fromisoformat(expires.replace("Z", "+00:00"))
        except ValueError:
            return None
        if when <= datetime.now(UTC):
            return None
    extra = [g.strip() for g in _field(secret, "auth-extra-groups").split(",")
             if g.strip().startswith("system:bootstrappers:")]
    return UserInfo(f"system:bootstrap:{tid}", "", (BOOTSTRAPPERS, *extra)).with_authenticated()
