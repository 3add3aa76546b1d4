"""Request bodies of the auth APIs: JSON, YAML, or protobuf as kubectl 1.32+ sends them.

kubectl's typed clients (``auth can-i``, ``create token``, ``create role``) encode their bodies
as Kubernetes protobuf; the field numbers are in ``k8s_protobuf_fields.txt`` beside the others.
"""

from __future__ import annotations

from typing import Any

from .. import errors, protobuf
from ..decoding import decode_json, decode_yaml
from ..request import JSON, PROTOBUF

protobuf.KIND_MESSAGES.update({
    ("rbac.authorization.k8s.io/v1", "Role"): "rbac.v1.Role",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "rbac.v1.ClusterRole",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "rbac.v1.RoleBinding",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "rbac.v1.ClusterRoleBinding",
    ("authentication.k8s.io/v1", "TokenRequest"): "authentication.v1.TokenRequest",
    ("authentication.k8s.io/v1", "SelfSubjectReview"): "authentication.v1.SelfSubjectReview",
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): "authorization.v1.SelfSubjectAccessReview",
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): "authorization.v1.SelfSubjectRulesReview",
})


def decode_body(raw: bytes, content_type: str) -> Any:
    """An empty body is ``{}``; otherwise decoded by Content-Type (JSON when none is given)."""
    if not raw.strip():
        return {}
    ct = (content_type or JSON).split(";")[0].strip().lower()
    if ct == PROTOBUF:
        return protobuf.decode_request(raw, None)  # type: ignore[arg-type]
    if ct in ("application/yaml", "application/x-yaml", "text/yaml"):
        body = decode_yaml(raw)
    else:
        body = decode_json(raw)
    if not isinstance(body, dict):
        raise errors.bad_request("the request body must be a JSON or YAML object")
    return body
