"""Shared fixtures and waits for the cluster tests (no tests in here)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable

import pytest

KUBECTL = next((p for p in (f"/usr/lib/google-cloud-sdk/bin/kubectl.1.{n}" for n in range(33, 26, -1))
                if os.path.exists(p)), shutil.which("kubectl"))


def wait_for(pred: Callable[[], object], timeout: float = 60.0, what: str = "condition", every: float = 0.2):
    """Poll until ``pred()`` is truthy; fail with ``what`` (a user-visible expectation) otherwise."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = pred()
        except Exception as exc:  # noqa: BLE001 - keep polling through transient API errors
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


def kubectl(cluster, *args: str, check: bool = True, timeout: float = 60) -> str:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    out = subprocess.run([KUBECTL, "--kubeconfig", cluster.kubeconfig, *args], capture_output=True, text=True,
                         timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({out.returncode}): {out.stderr}{out.stdout}")
    return out.stdout + (out.stderr if not check else "")


def deployment(name: str, replicas: int = 2, command: str = "sleep 3600", image: str = "busybox") -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"terminationGracePeriodSeconds": 1,
                                       "containers": [{"name": "app", "image": image,
                                                       "command": ["sh", "-c", command]}]}}},
    }


def running_pods(core, selector: str, ns: str = "default") -> list:
    return [p for p in core.list_namespaced_pod(ns, label_selector=selector).items
            if p.status.phase == "Running" and not p.metadata.deletion_timestamp
            and all(c.ready for c in p.status.container_statuses or [])]


def clear_namespace(cluster, ns: str = "default", timeout: float = 60.0) -> None:
    """Delete what a test left in ``ns`` (also after a failure), so the next test, or a rerun, starts clean."""
    from kubernetes.client.exceptions import ApiException

    core, apps = cluster.core(), cluster.apps()

    def gone_already(delete, name: str, **kw) -> None:
        try:
            delete(name, ns, **kw)
        except ApiException as exc:  # the garbage collector may have got there first
            if exc.status != 404:
                raise

    for dep in apps.list_namespaced_deployment(ns).items:
        gone_already(apps.delete_namespaced_deployment, dep.metadata.name, propagation_policy="Background")
    for rs in apps.list_namespaced_replica_set(ns).items:
        gone_already(apps.delete_namespaced_replica_set, rs.metadata.name, propagation_policy="Background")
    for pod in core.list_namespaced_pod(ns).items:
        if not pod.metadata.deletion_timestamp:
            gone_already(core.delete_namespaced_pod, pod.metadata.name, grace_period_seconds=1)
    wait_for(lambda: not core.list_namespaced_pod(ns).items and not apps.list_namespaced_replica_set(ns).items,
             timeout=timeout, what=f"namespace {ns} empty after the test")
