"""Blocking GETs against the Kubernetes API, for the node's plug-in hooks.

The kubelet calls its CNI/CSI/device hooks from worker threads and expects plain return
values, so these hooks read the few objects they need (a Node's podCIDR, a claim, a volume)
with one synchronous HTTP GET each, through the same kubeconfig as every other component.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import quote

from labkit.client.kubeconfig import KubeConfig


class APIReadError(Exception):
    """The GET failed; ``code`` is the HTTP status (0 when the server could not be reached)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def load(kubeconfig: KubeConfig | str | None) -> KubeConfig:
    return kubeconfig if isinstance(kubeconfig, KubeConfig) else KubeConfig.load(kubeconfig)


def get(kubeconfig: KubeConfig, path: str, timeout: float = 10.0) -> dict:
    """GET ``path`` (e.g. ``/api/v1/nodes/n1``) and return the decoded object."""
    req = urllib.request.Request(kubeconfig.server + path, headers={"Accept": "application/json"})
    if kubeconfig.token:
        req.add_header("Authorization", f"Bearer {kubeconfig.token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=kubeconfig.ssl_context()) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            msg = json.loads(exc.read()).get("message", exc.reason)
        except ValueError:
            msg = exc.reason
        raise APIReadError(exc.code, str(msg)) from None
    except (urllib.error.URLError, OSError) as exc:
        raise APIReadError(0, f"cannot reach the API server at {kubeconfig.server}: {exc}") from None


def node(kubeconfig: KubeConfig, name: str) -> dict:
    return get(kubeconfig, f"/api/v1/nodes/{quote(name, safe='')}")


def pvc(kubeconfig: KubeConfig, namespace: str, name: str) -> dict:
    return get(kubeconfig, f"/api/v1/namespaces/{quote(namespace, safe='')}/persistentvolumeclaims/{quote(name, safe='')}")


def pv(kubeconfig: KubeConfig, name: str) -> dict:
    return get(kubeconfig, f"/api/v1/persistentvolumes/{quote(name, safe='')}")
