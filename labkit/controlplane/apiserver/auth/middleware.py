"""The apiserver's filter chain for who and what: authenticate (401), then authorize (403).

``--authorization-mode`` lists authorizers in order (``Node,RBAC``); the first that allows
wins, and a request nobody allows is refused with kube-apiserver's 403 wording. The review APIs
and TokenRequest are answered here, beside the authorizer they consult. Without authentication
(the notebook default: loopback, plain HTTP) every request is allowed and nothing else is done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.streams import StreamReader

from .. import errors
from ..codec import dumps
from ..errors import StatusError
from ..request import BODY_LIMIT, response, status_response
from . import escalation, reviews
from . import node as node_authz
from .attributes import Attributes, forbidden, from_request, unauthorized
from .authn import Authenticator, bearer_token
from .rbac import RBACAuthorizer
from .user import ANONYMOUS, UNAUTHENTICATED, UNSECURED, UserInfo
from .wire import decode_body

if TYPE_CHECKING:
    from .serviceaccounts import ServiceAccountTokens

log = logging.getLogger(__name__)

USER = web.RequestKey("labkit.user", UserInfo)  # who made the request, once authenticated
MODES = ("AlwaysAllow", "AlwaysDeny", "Node", "RBAC")
PROBES = ("/healthz", "/livez", "/readyz")
ANONYMOUS_USER = UserInfo(ANONYMOUS, "", (UNAUTHENTICATED,))
# a kubelet creates these under its own name: read the body to know which name
_NAMED_BY_BODY = {("", "nodes"), ("coordination.k8s.io", "leases"), ("storage.k8s.io", "csinodes")}


def parse_modes(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``"Node,RBAC"`` -> ("Node", "RBAC"), or a ValueError that names the choices."""
    modes = tuple(m.strip() for m in (value.split(",") if isinstance(value, str) else value) if m.strip())
    bad = [m for m in modes if m not in MODES]
    if not modes or bad:
        raise ValueError(f"authorization mode {','.join(bad) or value!r} is not one of {', '.join(MODES)} "
                         "(give a comma-separated list, e.g. Node,RBAC)")
    return modes


class AuthFilter:
    """Authentication, authorization and the self-review APIs, as one aiohttp middleware."""

    def __init__(self, authenticator: Authenticator | None, modes: tuple[str, ...], rbac: RBACAuthorizer,
                 service_accounts: Callable[[], ServiceAccountTokens], sa_uid: Callable[[str, str], Awaitable[str | None]],
                 pod_node: node_authz.PodNode, used_by: node_authz.UsedBy):
        self.authenticator = authenticator
        self.modes = modes
        self.rbac = rbac
        self.service_accounts = service_accounts  # made on first use: most servers never sign a token
        self.sa_uid = sa_uid
        self.pod_node, self.used_by = pod_node, used_by
        self.denied = 0  # 401s and 403s served, for benchmarks and labs

    # ------------------------------------------------------------------ deciding
    async def decide(self, a: Attributes) -> tuple[bool, str, StatusError | None]:
        """(allowed, reason, the error to send when refused)."""
        preferred: StatusError | None = None
        for mode in self.modes:
            if mode == "AlwaysAllow":
                return True, "", None
            if mode == "AlwaysDeny":
                break
            if mode == "Node":
                decision, err = await node_authz.authorize(a, self.pod_node, self.used_by)
                if decision == node_authz.ALLOW:
                    return True, "", None
                preferred = preferred or err
            elif mode == "RBAC":
                ok, reason = self.rbac.authorize(a)
                if ok:
                    return True, reason, None
        return False, "", preferred or forbidden(a)

    # ------------------------------------------------------------------ the middleware
    @web.middleware
    async def middleware(self, http: web.Request, handler) -> web.StreamResponse:  # noqa: ANN001
        if self.authenticator is None:
            if http.method == "POST" and _answered_here(http.path):
                return await self._answering(http, UNSECURED)
            return await handler(http)
        try:
            refusal = await self._check(http)
        except StatusError as err:
            refusal = status_response(err)
        except Exception as exc:  # noqa: BLE001 - e.g. the store failing under the Node authorizer
            log.exception("authorizing %s %s", http.method, http.path)
            refusal = status_response(errors.internal(f"{type(exc).__name__}: {exc}"))
        if refusal is not None:
            return refusal
        if http.method == "POST" and _answered_here(http.path):
            return await self._answering(http, http[USER])
        return await handler(http)

    async def _check(self, http: web.Request) -> web.Response | None:
        """None when the request may go on (its user left in ``http``); else the 401 or 403 to send."""
        path = http.path
        user = await self.authenticator.authenticate(http)  # type: ignore[union-attr]
        if user is None:
            if path.startswith(PROBES) and bearer_token(http) is None:
                user = ANONYMOUS_USER  # health checks answer without credentials, nothing else does
            else:
                self.denied += 1
                return status_response(unauthorized())
        http[USER] = user
        a = from_request(user, http.method, path, http.query)
        body_name = body = None
        if (a.verb == "create" and not a.name and node_authz.node_name(a) is not None
                and (a.api_group, a.resource) in _NAMED_BY_BODY):
            body_name = _name_of(await _peek_body(http))
        if body_name:
            a = Attributes(a.user, a.verb, True, a.api_group, a.api_version, a.resource, a.subresource,
                           a.namespace, body_name, a.path)
        allowed, _, err = await self.decide(a)
        if not allowed:
            self.denied += 1
            return status_response(err or forbidden(a))
        if a.api_group == escalation.RBAC_GROUP and a.verb in ("create", "update", "patch") and "RBAC" in self.modes:
            if a.verb != "patch":
                body = await _peek_body(http)
            old = self.rbac.bindings.get(_binding_key(a)) if a.resource in escalation.BINDING_KINDS else None
            refusal = escalation.check(self.rbac, a, body, old)
            if refusal is not None:
                self.denied += 1
                return status_response(refusal)
        return None

    async def _answering(self, http: web.Request, user: UserInfo) -> web.Response:
        try:
            return await self._answer(http, user)
        except StatusError as err:
            return status_response(err)

    async def _answer(self, http: web.Request, user: UserInfo) -> web.Response:
        path = http.path.rstrip("/")
        body = decode_body(await _read(http), http.headers.get("Content-Type", ""))
        if path == reviews.SSAR_PATH:
            a = reviews.access_attributes(user, body)
            allowed, reason, _ = await self.decide(a)
            return response(dumps(reviews.access_review(body, allowed, reason)), 201)
        if path == reviews.SSRR_PATH:
            ns = ((body.get("spec") or {}).get("namespace")) or ""
            if self.authenticator is None or "AlwaysAllow" in self.modes:
                res = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
                nonres = [{"verbs": ["*"], "nonResourceURLs": ["*"]}]
            else:
                res, nonres = self.rbac.rules_review(user, ns)
            return response(dumps(reviews.rules_review(ns, res, nonres)), 201)
        if path == reviews.WHOAMI_PATH:
            return response(dumps(reviews.whoami(user)), 201)
        m = reviews.TOKEN_PATH.match(http.path)
        assert m is not None
        return await self._token(m.group(1), m.group(2), body)

    async def _token(self, namespace: str, name: str, body: dict) -> web.Response:
        from . import serviceaccounts

        uid = await self.sa_uid(namespace, name)
        if uid is None:
            raise errors.not_found("serviceaccounts", "", name)
        spec = (body or {}).get("spec") or {}
        seconds = spec.get("expirationSeconds") or serviceaccounts.DEFAULT_SECONDS
        if not isinstance(seconds, int) or seconds < serviceaccounts.MIN_SECONDS:
            raise errors.invalid("TokenRequest", "authentication.k8s.io", name, [errors.cause(
                "spec.expirationSeconds", f"Invalid value: {seconds}: may not specify a duration less than "
                "10 minutes")])
        seconds = min(seconds, serviceaccounts.MAX_SECONDS)
        audiences = spec.get("audiences") or None
        token, exp = self.service_accounts().issue(namespace, name, uid, audiences, seconds,
                                                 spec.get("boundObjectRef"))
        return response(dumps(reviews.token_request(body, token, exp, seconds)), 201)


def _answered_here(path: str) -> bool:
    return path.rstrip("/") in reviews.REVIEW_PATHS or reviews.TOKEN_PATH.match(path) is not None


def _binding_key(a: Attributes) -> str:
    if a.resource == "rolebindings":
        return f"/registry/rolebindings/{a.namespace}/{a.name}"
    return f"/registry/clusterrolebindings/{a.name}"


async def _read(http: web.Request) -> bytes:
    if http.content_length is not None and http.content_length > BODY_LIMIT:
        raise errors.too_large(BODY_LIMIT)
    raw = await http.read()
    if len(raw) > BODY_LIMIT:
        raise errors.too_large(BODY_LIMIT)
    return raw


async def _peek_body(http: web.Request) -> dict | None:
    """The decoded body of a write, leaving it for the handler to read as usual (None if unreadable)."""
    try:
        raw = await _read(http)
    except StatusError:
        return None
    reader = StreamReader(http.protocol, 2 ** 16, loop=asyncio.get_running_loop())
    reader.feed_data(raw)
    reader.feed_eof()
    http._payload = reader  # the handler reads the body from here, as if untouched
    try:
        body = decode_body(raw, http.headers.get("Content-Type", ""))
    except StatusError:
        return None
    return body if isinstance(body, dict) else None


def _name_of(body: dict | None) -> str | None:
    name = ((body or {}).get("metadata") or {}).get("name")
    return name if isinstance(name, str) else None
