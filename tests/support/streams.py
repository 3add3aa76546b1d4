"""Helpers for the streaming tests (exec, cp, attach): kubectl versions, a pod to exec into, and a
channel-protocol client for the runtime's streaming server."""

from __future__ import annotations

import os
import subprocess

import aiohttp
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


async def converse(url: str, protocol: str, send: list[bytes]) -> tuple[str, dict[int, bytes]]:
    """Send the messages, then collect every channel until the server closes; returns the
    subprotocol the server chose and each channel's bytes."""
    got: dict[int, bytes] = {}
    async with aiohttp.ClientSession() as s, s.ws_connect(url, protocols=(protocol,)) as ws:
        for m in send:
            await ws.send_bytes(m)
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                break
            got[msg.data[0]] = got.get(msg.data[0], b"") + msg.data[1:]
        return ws.protocol or "", got
