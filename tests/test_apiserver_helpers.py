"""Shared fixtures for the apiserver tests: a server on a free port and clients pointed at it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from labkit.controlplane.apiserver import APIServer

KUBECTL_DIR = Path("/usr/lib/google-cloud-sdk/bin")


@pytest.fixture(scope="module")
def api() -> Iterator[APIServer]:
    with APIServer("memory", bookmark_interval=0.5) as server:
        yield server


@pytest.fixture(scope="module")
def kc(api: APIServer) -> client.ApiClient:
    cfg = client.Configuration()
    cfg.host = api.url
    return client.ApiClient(cfg)


@pytest.fixture()
def ns(kc: client.ApiClient) -> Iterator[str]:
    name = "t-" + uuid.uuid4().hex[:8]
    client.CoreV1Api(kc).create_namespace({"metadata": {"name": name}})
    yield name
    client.CoreV1Api(kc).delete_namespace(name)


def pod(name: str, labels: dict | None = None, image: str = "busybox:1.36") -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"containers": [{"name": "c", "image": image, "command": ["sleep", "3600"]}]}}


def deployment(name: str, replicas: int = 2, image: str = "nginx:1.25") -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "web", "image": image}]}}}}


def kubeconfig(path: Path, url: str) -> Path:
    path.write_text(f"""apiVersion: v1
kind: Config
clusters:
- cluster: {{server: "{url}"}}
  name: lk
contexts:
- context: {{cluster: lk, user: lk, namespace: default}}
  name: lk
current-context: lk
users:
- name: lk
  user: {{}}
""")
    return path


def kubectls(versions: tuple[str, ...] = ("1.27", "1.30", "1.33")) -> list:
    """pytest params for the kubectl binaries present; a skipped param where one is missing."""
    out = []
    for v in versions:
        path = KUBECTL_DIR / f"kubectl.{v}"
        mark = [] if path.exists() else [pytest.mark.skip(reason=f"kubectl {v} is not installed")]
        out.append(pytest.param(str(path), id=f"kubectl-{v}", marks=mark))
    return out
