"""kube-apiserver's TLS flags as one value (kept apart from :mod:`.pki`, which needs ``cryptography``)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass


@dataclass
class TLSConfig:
    """kube-apiserver's ``--tls-cert-file``, ``--tls-private-key-file`` and ``--client-ca-file``."""
    cert_file: str
    key_file: str
    client_ca_file: str | None = None

    def server_context(self) -> ssl.SSLContext:
        """The listening socket's context; client certificates are optional and checked against the CA."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert_file, self.key_file)
        if self.client_ca_file:
            ctx.load_verify_locations(self.client_ca_file)
            ctx.verify_mode = ssl.CERT_OPTIONAL
        return ctx
