"""TLS bootstrap: how a kubelet on another machine gets its own identity, as ``kubeadm join`` does.

The joining machine holds only a bootstrap token (``ID.SECRET``, good for a day) and the cluster's
CA certificate. With the token it signs in as ``system:bootstrap:ID`` (group
``system:bootstrappers``), which may do one thing: file a CertificateSigningRequest for the
client certificate of ``system:node:NAME`` in group ``system:nodes``. The private key never leaves
this machine. Once the class server has approved and signed it, the kubelet uses that certificate
and the token is no longer needed; the Node authorizer then limits the node to its own Node
object and the pods bound to it.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
KUBELET_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


class JoinError(Exception):
    """The node could not join (the message says what to check)."""


def parse_token(token: str) -> tuple[str, str]:
    m = TOKEN_RE.match(token or "")
    if not m:
        raise JoinError("a bootstrap token looks like 'abcdef.0123456789abcdef' (6 and 16 lower-case letters or "
                        "digits); copy it from the output of 'labkit class up'")
    return m.group(1), m.group(2)


def _pem(obj) -> bytes:  # noqa: ANN001 - a cryptography key or CSR
    from cryptography.hazmat.primitives import serialization

    if hasattr(obj, "private_bytes"):
        return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    return obj.public_bytes(serialization.Encoding.PEM)


def certificate_request(node: str) -> tuple[bytes, bytes]:
    """A new private key and a CSR for ``system:node:NODE`` in ``system:nodes`` (both PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return _pem(key), _pem(csr)


class _API:
    def __init__(self, server: str, token: str, ca_file: str):
        if not server.startswith("https://"):
            raise JoinError(f"--server {server!r}: a node joins over TLS only (https://HOST:PORT)")
        self.server = server.rstrip("/")
        self.token = token
        try:
            self.ctx = ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise JoinError(f"--ca-cert {ca_file}: not a readable CA certificate ({exc})") from None

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        req = urllib.request.Request(self.server + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10, context=self.ctx) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as err:
            try:
                msg = json.loads(err.read()).get("message", "")
            except ValueError:
                msg = ""
            hint = {401: "the token is unknown or expired: ask the teacher for a new one",
                    403: "the token may not ask for node certificates"}.get(err.code, "")
            raise JoinError(f"{method} {path}: HTTP {err.code} {msg}" + (f" ({hint})" if hint else "")) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise JoinError(f"the server's certificate is not signed by --ca-cert ({reason.verify_message}): "
                                "is it this class's ca.crt?") from None
            raise JoinError(f"cannot reach {self.server}: {reason}") from None


def request_certificate(server: str, token: str, ca_file: str, node: str, timeout: float = 60.0) -> tuple[bytes, bytes]:
    """File the node's CSR with the bootstrap token and wait for its signed certificate; (cert, key) PEM."""
    parse_token(token)
    api = _API(server, token, ca_file)
    key, csr = certificate_request(node)
    created = api.call("POST", CSR_PATH, {
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"generateName": "node-csr-", "labels": {"labkit.dev/node": node}},
        "spec": {"request": base64.b64encode(csr).decode(), "signerName": KUBELET_SIGNER,
                 "usages": ["digital signature", "client auth"]}})
    name = created["metadata"]["name"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        obj = api.call("GET", f"{CSR_PATH}/{name}")
        status = obj.get("status") or {}
        for c in status.get("conditions") or []:
            if c.get("type") in ("Denied", "Failed") and c.get("status", "True") == "True":
                raise JoinError(f"the certificate request {name} was {c['type'].lower()}: {c.get('message', '')}")
        if status.get("certificate"):
            return base64.b64decode(status["certificate"]), key
        time.sleep(0.2)
    raise JoinError(f"the certificate request {name} was not signed within {timeout:.0f}s: "
                    "is the class server running? ('labkit class status' on the teacher's machine)")


def write_node_kubeconfig(path: Path, server: str, ca_file: str, cert: bytes, key: bytes, node: str) -> Path:
    """The kubelet's own kubeconfig: the CA, and the node's certificate and key (readable by root only)."""
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    doc = {"apiVersion": "v1", "kind": "Config",
           "clusters": [{"name": "class", "cluster": {"server": server,
                                                      "certificate-authority-data": b64(Path(ca_file).read_bytes())}}],
           "users": [{"name": f"system:node:{node}", "user": {"client-certificate-data": b64(cert),
                                                               "client-key-data": b64(key)}}],
           "contexts": [{"name": "class", "context": {"cluster": "class", "user": f"system:node:{node}"}}],
           "current-context": "class"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)
    return path
