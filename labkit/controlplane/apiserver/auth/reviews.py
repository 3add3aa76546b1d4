"""The review APIs a user asks about themself: SelfSubjectAccessReview (``kubectl auth can-i``),
SelfSubjectRulesReview (``kubectl auth can-i --list``), SelfSubjectReview (``kubectl auth whoami``),
and TokenRequest (``kubectl create token``). None of them is stored: each answers and is gone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from .. import errors
from .attributes import Attributes
from .user import UserInfo

AUTHZ = "/apis/authorization.k8s.io/v1/"
SSAR_PATH = AUTHZ + "selfsubjectaccessreviews"
SSRR_PATH = AUTHZ + "selfsubjectrulesreviews"
WHOAMI_PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
TOKEN_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/serviceaccounts/([^/]+)/token/?$")
REVIEW_PATHS = {SSAR_PATH, SSRR_PATH, WHOAMI_PATH}


def access_attributes(user: UserInfo, body: dict) -> Attributes:
    """The request a SelfSubjectAccessReview asks about, as the authorizer sees requests."""
    spec = body.get("spec") if isinstance(body, dict) else None
    if not isinstance(spec, dict):
        raise errors.invalid("SelfSubjectAccessReview", "authorization.k8s.io", "",
                             [errors.cause("spec", "Required value: exactly one of nonResourceAttributes or "
                                           "resourceAttributes must be specified", "FieldValueRequired")])
    ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if bool(ra) == bool(nra):
        raise errors.invalid("SelfSubjectAccessReview", "authorization.k8s.io", "",
                             [errors.cause("spec.resourceAttributes", "Invalid value: exactly one of "
                                           "nonResourceAttributes or resourceAttributes must be specified")])
    if nra:
        return Attributes(user, nra.get("verb", ""), resource_request=False, path=nra.get("path", ""))
    return Attributes(user, ra.get("verb", ""), True, ra.get("group", ""), ra.get("version", ""),
                      ra.get("resource", ""), ra.get("subresource", ""), ra.get("namespace", ""),
                      ra.get("name", ""))


def access_review(body: dict, allowed: bool, reason: str) -> dict:
    status: dict = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    return {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None}, "spec": body.get("spec") or {}, "status": status}


def rules_review(namespace: str, resource_rules: list[dict], non_resource_rules: list[dict]) -> dict:
    return {"kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None}, "spec": {"namespace": namespace},
            "status": {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules,
                       "incomplete": False}}


def whoami(user: UserInfo) -> dict:
    return {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None}, "status": {"userInfo": user.review_dict()}}


def token_request(body: dict, token: str, expires: int, seconds: int) -> dict:
    spec = dict((body or {}).get("spec") or {})
    spec["expirationSeconds"] = seconds
    spec.setdefault("audiences", [])
    when = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None}, "spec": spec,
            "status": {"token": token, "expirationTimestamp": when}}
