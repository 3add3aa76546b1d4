"""The teacher's side of ``labkit node join``: a bootstrap token, and the approver that signs nodes in.

``bootstrap_token`` writes a ``bootstrap-token-ID`` Secret in kube-system, as ``kubeadm token create``
does; the API server accepts ``ID.SECRET`` as ``system:bootstrap:ID`` in ``system:bootstrappers``
until it expires. ``approve_pending`` is the controller-manager's csrapproving and csrsigning in one
pass: a CSR for the kubelet signer whose subject is ``system:node:NAME`` / ``system:nodes`` is approved
and signed with the cluster's CA; anything else is left for a human (``kubectl get csr``).
"""

from __future__ import annotations

import base64
import datetime
import logging
import secrets
import string
from typing import Any

log = logging.getLogger(__name__)

BOOTSTRAPPERS = "system:bootstrappers"
NODE_BOOTSTRAPPER = "system:node-bootstrapper"
KUBELET_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
TOKEN_TTL = datetime.timedelta(hours=24)
CERT_TTL = datetime.timedelta(days=365)
_ALPHABET = string.ascii_lowercase + string.digits


def bootstrap_token(api_client: Any, ttl: datetime.timedelta = TOKEN_TTL) -> str:
    """A new ``ID.SECRET`` token that lets a machine ask for a node certificate, and the RBAC for it."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    tid = "".join(secrets.choice(_ALPHABET) for _ in range(6))
    secret = "".join(secrets.choice(_ALPHABET) for _ in range(16))
    expires = (datetime.datetime.now(datetime.UTC) + ttl).strftime("%Y-%m-%dT%H:%M:%SZ")
    client.CoreV1Api(api_client).create_namespaced_secret("kube-system", {
        "apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
        "metadata": {"name": f"bootstrap-token-{tid}", "namespace": "kube-system"},
        "stringData": {"token-id": tid, "token-secret": secret, "expiration": expires,
                       "usage-bootstrap-authentication": "true", "usage-bootstrap-signing": "true",
                       "auth-extra-groups": "system:bootstrappers:labkit:default-node-token",
                       "description": "labkit class: lets a machine join as a node"}})
    rbac = client.RbacAuthorizationV1Api(api_client)
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": NODE_BOOTSTRAPPER},
            "rules": [{"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"],
                       "verbs": ["create", "get", "list", "watch"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "labkit:kubelet-bootstrap"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NODE_BOOTSTRAPPER},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": BOOTSTRAPPERS}]}
    for create, body in ((rbac.create_cluster_role, role), (rbac.create_cluster_role_binding, binding)):
        try:
            create(body)
        except ApiException as err:
            if err.status != 409:
                raise
    return f"{tid}.{secret}"


def _node_subject(csr_pem: bytes) -> str | None:
    """The node name a CSR asks for, when its subject is exactly a kubelet's; else None."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        req = x509.load_pem_x509_csr(csr_pem)
    except ValueError:
        return None
    if not req.is_signature_valid:
        return None
    cn = [a.value for a in req.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    org = [a.value for a in req.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    if len(cn) != 1 or org != ["system:nodes"] or not str(cn[0]).startswith("system:node:"):
        return None
    name = str(cn[0])[len("system:node:"):]
    return name or None


def sign(csr_pem: bytes, ca_cert_pem: bytes, ca_key_pem: bytes) -> bytes:
    """A client certificate for the CSR's subject and key, signed by the cluster's CA (PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID

    req = x509.load_pem_x509_csr(csr_pem)
    ca = x509.load_pem_x509_certificate(ca_cert_pem)
    key = serialization.load_pem_private_key(ca_key_pem, password=None)
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(req.subject).issuer_name(ca.subject)
            .public_key(req.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + CERT_TTL)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def approve_pending(api_client: Any, ca_cert_pem: bytes, ca_key_pem: bytes) -> list[str]:
    """Approve and sign every pending kubelet CSR; returns the node names signed in this pass."""
    from kubernetes import client

    certs = client.CertificatesV1Api(api_client)
    signed = []
    for csr in certs.list_certificate_signing_request().items:
        status = csr.status
        if (status and status.certificate) or csr.spec.signer_name != KUBELET_SIGNER:
            continue
        if status and any(c.type in ("Denied", "Failed") for c in status.conditions or []):
            continue
        pem = base64.b64decode(csr.spec.request)
        node = _node_subject(pem)
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if node is None:
            cond = {"type": "Denied", "status": "True", "reason": "NotAKubelet", "lastUpdateTime": now,
                    "message": "the subject is not O=system:nodes, CN=system:node:NAME"}
            body = {"status": {"conditions": [cond]}}
        else:
            cond = {"type": "Approved", "status": "True", "reason": "AutoApproved", "lastUpdateTime": now,
                    "message": f"labkit class: a bootstrapped node joins as {node}"}
            cert = sign(pem, ca_cert_pem, ca_key_pem)
            body = {"status": {"conditions": [cond], "certificate": base64.b64encode(cert).decode()}}
            signed.append(node)
        certs.patch_certificate_signing_request_status(csr.metadata.name, body)
        log.warning("certificate request %s: %s", csr.metadata.name, cond["type"])
    return signed
