"""The cluster's certificate authority and the certificates it signs, as kubeadm makes them.

One CA per cluster; the apiserver's serving certificate names 127.0.0.1, ``localhost`` and any
extra names or addresses the cluster will be reached by; kubeconfigs carry the CA's certificate
so clients trust exactly this cluster and nothing else.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .tlsconfig import TLSConfig

VALID_DAYS = 365


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())  # quick to make, and what kubeadm can use too


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


class CertificateAuthority:
    """A CA key and self-signed certificate in a folder (``ca.crt``, ``ca.key``)."""

    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, cert_file: Path):
        self.cert, self.key, self.cert_file = cert, key, cert_file

    @classmethod
    def create(cls, folder: str | os.PathLike, name: str = "labkit-ca") -> CertificateAuthority:
        folder = Path(folder)
        key = _key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=10 * VALID_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        _write(folder / "ca.crt", cert.public_bytes(serialization.Encoding.PEM))
        _write(folder / "ca.key", _pem_key(key), private=True)
        return cls(cert, key, folder / "ca.crt")

    @classmethod
    def load(cls, folder: str | os.PathLike) -> CertificateAuthority:
        folder = Path(folder)
        cert = x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes())
        key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cls(cert, key, folder / "ca.crt")

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, cert_file: str | os.PathLike, key_file: str | os.PathLike, common_name: str,
              organizations: list[str] | None = None, hosts: list[str] | None = None,
              server: bool = False) -> tuple[str, str]:
        """Sign a certificate: a server's (``hosts`` as SANs) or a client's (CN = user, O = groups)."""
        key = _key()
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations or []]
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        now = datetime.datetime.now(datetime.UTC)
        b = (x509.CertificateBuilder().subject_name(x509.Name(attrs)).issuer_name(self.cert.subject)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5))
             .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                   else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                            critical=False))
        if hosts:
            names: list[x509.GeneralName] = []
            for h in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(h)))
                except ValueError:
                    names.append(x509.DNSName(h))
            b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = b.sign(self.key, hashes.SHA256())
        _write(Path(cert_file), cert.public_bytes(serialization.Encoding.PEM))
        _write(Path(key_file), _pem_key(key), private=True)
        return str(cert_file), str(key_file)


def serving_hosts(extra: list[str] | None = None) -> list[str]:
    """The names a local apiserver is reached by, plus ``extra`` (a node's address behind a veth)."""
    hosts = ["127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"]
    return hosts + [h for h in extra or [] if h not in hosts]


def make_cluster_pki(folder: str | os.PathLike, extra_hosts: list[str] | None = None) -> TLSConfig:
    """A new CA and the apiserver's serving certificate in ``folder``; client certificates from the CA work."""
    folder = Path(folder)
    ca = CertificateAuthority.create(folder)
    cert, key = ca.issue(folder / "apiserver.crt", folder / "apiserver.key", "kube-apiserver",
                         hosts=serving_hosts(extra_hosts), server=True)
    return TLSConfig(cert, key, str(ca.cert_file))
