"""Kubeconfig files: where the API server is and how to authenticate to it.

Components take ``--kubeconfig`` like their Kubernetes counterparts, so the same file that
kubectl uses points them at labkit's apiserver or at a real cluster.
"""

from __future__ import annotations

import base64
import hashlib
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml


class KubeConfigError(Exception):
    """The kubeconfig is missing or does not say where the API server is."""


@dataclass
class KubeConfig:
    server: str
    token: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False
    namespace: str = "default"
    path: str | None = None

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, context: str | None = None) -> KubeConfig:
        """Read the current (or named) context of a kubeconfig; default ``$KUBECONFIG`` then ~/.kube/config."""
        p = Path(path or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or "~/.kube/config").expanduser()
        if not p.exists():
            raise KubeConfigError(f"no kubeconfig at {p}: start a cluster with 'labkit cluster up' or pass --kubeconfig")
        try:
            doc = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise KubeConfigError(f"{p} is not valid YAML: {exc}") from exc
        ctx_name = context or doc.get("current-context")
        ctxs = {c["name"]: c.get("context", {}) for c in doc.get("contexts") or []}
        if ctx_name not in ctxs:
            if len(ctxs) == 1:
                ctx_name = next(iter(ctxs))
            else:
                raise KubeConfigError(f"{p}: context {ctx_name!r} not found (have {sorted(ctxs)})")
        ctx = ctxs[ctx_name]
        clusters = {c["name"]: c.get("cluster", {}) for c in doc.get("clusters") or []}
        users = {u["name"]: u.get("user", {}) or {} for u in doc.get("users") or []}
        cluster = clusters.get(ctx.get("cluster"))
        if not cluster or not cluster.get("server"):
            raise KubeConfigError(f"{p}: context {ctx_name!r} names no cluster with a server URL")
        user = users.get(ctx.get("user"), {})
        base = p.parent
        return cls(
            server=cluster["server"].rstrip("/"),
            token=user.get("token"),
            ca_file=_file_or_data(cluster, "certificate-authority", base),
            cert_file=_file_or_data(user, "client-certificate", base),
            key_file=_file_or_data(user, "client-key", base),
            insecure=bool(cluster.get("insecure-skip-tls-verify")),
            namespace=ctx.get("namespace") or "default",
            path=str(p),
        )

    def ssl_context(self) -> ssl.SSLContext | None:
        """None for plain http; otherwise a context with the CA / client certificate configured."""
        if not self.server.startswith("https"):
            return None
        ctx = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else ssl.create_default_context()
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.cert_file and self.key_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


def _file_or_data(section: dict, key: str, base: Path) -> str | None:
    if section.get(key):
        return str((base / section[key]).resolve())
    data = section.get(key + "-data")
    if not data:
        return None
    # one file per distinct content: components load their kubeconfig often, and must not leave a
    # new temporary file behind each time
    raw = base64.b64decode(data)
    name = data_file(raw)
    if not os.path.exists(name):
        fd, tmp = tempfile.mkstemp(prefix="labkit-kubeconfig-", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.replace(tmp, name)
    return name


def data_file(raw: bytes) -> str:
    """Where an embedded certificate or key of a kubeconfig is written for TLS libraries to read."""
    return os.path.join(tempfile.gettempdir(), f"labkit-kubeconfig-{hashlib.sha256(raw).hexdigest()[:16]}.pem")


def write_kubeconfig(path: str | os.PathLike, server: str, name: str = "labkit", *, token: str | None = None,
                     ca_data: bytes | None = None, ca_file: str | os.PathLike | None = None,
                     namespace: str = "default", user: str | None = None) -> Path:
    """Write a kubeconfig: for an unauthenticated local API server (what ``labkit cluster up`` hands
    out), or, with ``token`` and the cluster's CA (``ca_data`` embedded, or ``ca_file`` by path), for
    one user of a secure one."""
    cluster: dict = {"server": server}
    if ca_data is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_data).decode()
    elif ca_file is not None:
        cluster["certificate-authority"] = str(ca_file)
    user_name = user or name
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": user_name, "user": {"token": token} if token else {}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": user_name, "namespace": namespace}}],
        "current-context": name,
        "preferences": {},
    }
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if token:  # a credential: readable by its owner only
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(yaml.safe_dump(doc, sort_keys=False))
    else:
        p.write_text(yaml.safe_dump(doc, sort_keys=False))
    return p
