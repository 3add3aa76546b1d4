"""Helpers for the apiserver tests: manifests, a kubeconfig file, the kubectl versions present.

The fixtures (a server on a free port, clients pointed at it) are in tests/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

KUBECTL_DIR = Path("/usr/lib/google-cloud-sdk/bin")


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
