"""ServiceAccount tokens: signed JWTs that the TokenRequest API hands out (``kubectl create token``).

The cluster makes its own signing key (kube-apiserver's ``--service-account-signing-key-file``);
a token names ``system:serviceaccount:NS:NAME`` and is accepted while it has not expired and its
ServiceAccount still exists with the same uid.
"""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from .user import AUTHENTICATED, SA_PREFIX, UserInfo

ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_SECONDS = 3600
MIN_SECONDS = 600  # kube-apiserver refuses shorter tokens
MAX_SECONDS = 48 * 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _compact(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def username(namespace: str, name: str) -> str:
    return f"{SA_PREFIX}{namespace}:{name}"


def groups(namespace: str) -> tuple[str, ...]:
    return ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED)


class ServiceAccountTokens:
    """Signs and checks ES256 tokens with one P-256 key (made at start unless a key file is given).

    kube-apiserver accepts RSA or ECDSA signing keys; ECDSA is made in a millisecond, RSA in most of a second.
    """

    def __init__(self, key_file: str | os.PathLike | None = None):
        if key_file and Path(key_file).exists():
            key = serialization.load_pem_private_key(Path(key_file).read_bytes(), None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{key_file}: the service account signing key must be an ECDSA P-256 key")
        else:
            key = ec.generate_private_key(ec.SECP256R1())
            if key_file:
                p = Path(key_file)
                p.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        self.key = key
        self.public = key.public_key()
        der = self.public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        digest = hashes.Hash(hashes.SHA256())
        digest.update(der)
        self.kid = _b64(digest.finalize())

    def issue(self, namespace: str, name: str, uid: str, audiences: list[str] | None = None,
              seconds: int = DEFAULT_SECONDS, bound: dict | None = None) -> tuple[str, int]:
        """A token for one ServiceAccount; returns it and its expiry (Unix seconds)."""
        now = int(time.time())
        exp = now + seconds
        claims: dict = {"aud": audiences or [ISSUER], "exp": exp, "iat": now, "nbf": now, "iss": ISSUER,
                        "sub": username(namespace, name),
                        "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}}}
        if bound:
            claims["kubernetes.io"][bound["kind"].lower()] = {"name": bound.get("name", ""),
                                                                "uid": bound.get("uid", "")}
        header = {"alg": "ES256", "kid": self.kid}
        signing_input = f"{_b64(_compact(header))}.{_b64(_compact(claims))}"
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}", exp

    def verify(self, token: str) -> dict | None:
        """The token's claims if this cluster signed it and it is current, else None."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = json.loads(_unb64(parts[0]))
            sig = _unb64(parts[2])
            if header.get("alg") != "ES256" or len(sig) != 64:
                return None
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            self.public.verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
            claims = json.loads(_unb64(parts[1]))
        except (ValueError, InvalidSignature):
            return None
        now = time.time()
        if claims.get("iss") != ISSUER or not claims.get("nbf", 0) - 60 <= now < claims.get("exp", 0):
            return None
        sa = (claims.get("kubernetes.io") or {}).get("serviceaccount") or {}
        if not isinstance(sa, dict) or not sa.get("name"):
            return None
        return claims

    @staticmethod
    def user(claims: dict) -> UserInfo:
        k = claims["kubernetes.io"]
        ns, sa = k["namespace"], k["serviceaccount"]
        return UserInfo(username(ns, sa["name"]), sa.get("uid", ""), groups(ns))
