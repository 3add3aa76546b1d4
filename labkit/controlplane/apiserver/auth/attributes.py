"""What a request asks to do, in the authorizers' terms (kube-apiserver's ``RequestInfo``).

A resource request names a verb (get, list, watch, create, update, patch, delete,
deletecollection), an API group, a resource and perhaps a subresource, a namespace and a name;
anything else (``/api``, ``/version``, ``/healthz``) is a non-resource request on a path.
"""

from __future__ import annotations

from dataclasses import dataclass

from multidict import MultiMapping

from .. import errors
from .user import UserInfo

_METHOD_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch",
                 "DELETE": "delete"}
_NAMESPACE_SUBRESOURCES = {"status", "finalize"}
# streams that run a command or open a port in a pod: always "create", also when opened with GET
# (kube-apiserver asks for both since 1.31; a websocket exec is a GET)
_STREAMS = {"exec", "attach", "portforward"}


@dataclass(frozen=True)
class Attributes:
    user: UserInfo
    verb: str
    resource_request: bool = True
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    @property
    def full_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def from_request(user: UserInfo, method: str, path: str, query: MultiMapping[str]) -> Attributes:
    """The attributes of one HTTP request, parsed as kube-apiserver's RequestInfoFactory parses them."""
    parts = [p for p in path.strip("/").split("/") if p]
    method_verb = _METHOD_VERBS.get(method, method.lower())
    if len(parts) < 2 or parts[0] not in ("api", "apis") or (parts[0] == "apis" and len(parts) < 3):
        return Attributes(user, method.lower() if method != "HEAD" else "head", resource_request=False,
                          path=path)
    if parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    else:
        group, version, rest = parts[1], parts[2], parts[3:]
    verb = method_verb
    if rest and rest[0] == "watch":  # the old /api/v1/watch/... form
        verb, rest = "watch", rest[1:]
    if not rest:
        return Attributes(user, method.lower() if method != "HEAD" else "head", resource_request=False,
                          path=path)
    namespace = ""
    if rest[0] == "namespaces":
        if len(rest) > 1:
            namespace = rest[1]
            if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
                rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if verb == "get" or verb == "watch":
        if query.get("watch") in ("true", "1"):
            verb = "watch"
        elif not name and verb == "get":
            verb = "list"
    elif verb == "delete" and not name:
        verb = "deletecollection"
    if sub in _STREAMS:
        verb = "create"
    if not name and verb in ("list", "watch", "deletecollection"):
        # kubectl delete waits with ?fieldSelector=metadata.name=X: authorized as that one name
        for term in (query.get("fieldSelector") or "").split(","):
            key, sep, value = term.partition("=")
            if key.strip() == "metadata.name" and sep and not value.startswith("="):
                name = value.strip()
    return Attributes(user, verb, True, group, version, resource, sub, namespace, name, path)


def forbidden(attrs: Attributes, reason: str = "") -> errors.StatusError:
    """403, worded exactly as kube-apiserver words it (kubectl prints it after ``Error from server``)."""
    who = attrs.user.name
    if not attrs.resource_request:
        msg = f'User "{who}" cannot {attrs.verb} path "{attrs.path}"'
    elif attrs.namespace:
        msg = (f'User "{who}" cannot {attrs.verb} resource "{attrs.full_resource}" in API group '
               f'"{attrs.api_group}" in the namespace "{attrs.namespace}"')
    else:
        msg = (f'User "{who}" cannot {attrs.verb} resource "{attrs.full_resource}" in API group '
               f'"{attrs.api_group}" at the cluster scope')
    if reason:
        msg = f"{msg}: {reason}"
    if not attrs.resource_request or not attrs.resource:
        message = f"forbidden: {msg}"
    else:
        qualified = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
        message = f'{qualified} "{attrs.name}" is forbidden: {msg}' if attrs.name else f"{qualified} is forbidden: {msg}"
    details: dict = {"group": attrs.api_group, "kind": attrs.resource}
    if attrs.name:
        details["name"] = attrs.name
    return errors.StatusError(403, "Forbidden", message, details if attrs.resource_request else {})


def unauthorized() -> errors.StatusError:
    """401: no credentials, or credentials this server does not accept (kube-apiserver says only this)."""
    return errors.StatusError(401, "Unauthorized", "Unauthorized")
