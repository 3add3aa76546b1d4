"""Helpers for the streaming tests (exec, cp, attach): kubectl versions and a pod to exec into."""

from __future__ import annotations

import os
import subprocess

import pytest

from support.cluster import running_pods, wait_for

KUBECTL_DIR = "/usr/lib/google-cloud-sdk/bin"


def kubectl_version(minor: int) -> str:
    """The path of kubectl 1.MINOR on this machine; the test is skipped where it is missing."""
    path = f"{KUBECTL_DIR}/kubectl.1.{minor}"
    if not os.path.exists(path):
        pytest.skip(f"kubectl 1.{minor} is not installed at {path}")
    return path


def run_kubectl(binary: str, cluster, *args: str, stdin: bytes | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess:
    """kubectl with the cluster's kubeconfig; the result, whatever its exit code."""
    return subprocess.run([binary, "--kubeconfig", cluster.kubeconfig, *args], input=stdin, capture_output=True,
                          timeout=timeout)


def sleeper(name: str, command: str = "sleep 3600", labels: dict[str, str] | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {"app": name}},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", command]}]}}


def start_pod(cluster, manifest: dict, ns: str = "default") -> str:
    """Create the pod and wait until it runs; its name."""
    core = cluster.core()
    core.create_namespaced_pod(ns, manifest)
    name = manifest["metadata"]["name"]
    wait_for(lambda: running_pods(core, f"app={manifest['metadata']['labels']['app']}", ns), timeout=90,
             what=f"pod {name} running")
    return name


def web_pod(name: str, body: str) -> dict:
    """A busybox httpd on port 8080 serving ``body`` at /."""
    return sleeper(name, f"mkdir -p /www && echo {body} > /www/index.html && exec httpd -f -p 8080 -h /www")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
