"""Manifests and an in-process control-plane loop for the workload-controller tests (no tests in here)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


def job(name: str, command: str, *, completions: int | None = 1, parallelism: int = 1, backoff_limit: int = 6,
        **spec: object) -> dict:
    s: dict = {"parallelism": parallelism, "backoffLimit": backoff_limit,
               "template": {"spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                                     "containers": [{"name": "work", "image": "busybox",
                                                     "command": ["sh", "-c", command]}]}}, **spec}
    if completions is not None:
        s["completions"] = completions
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": s}


def cronjob(name: str, schedule: str = "*/1 * * * *", **spec: object) -> dict:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
            "spec": {"schedule": schedule, **spec, "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox",
                                                              "command": ["date"]}]}}}}}}


def daemonset(name: str, **pod_spec: object) -> dict:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"terminationGracePeriodSeconds": 1,
                                           "containers": [{"name": "agent", "image": "busybox",
                                                           "command": ["sleep", "3600"]}], **pod_spec}}}}


def statefulset(name: str, replicas: int = 2, storage: str = "16Mi") -> dict:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"serviceName": name, "replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"terminationGracePeriodSeconds": 1,
                                           "containers": [{"name": "db", "image": "busybox",
                                                           "command": ["sh", "-c", "sleep 3600"],
                                                           "volumeMounts": [{"name": "data",
                                                                             "mountPath": "/data"}]}]}},
                     "volumeClaimTemplates": [{"metadata": {"name": "data"},
                                               "spec": {"accessModes": ["ReadWriteOnce"],
                                                        "resources": {"requests": {"storage": storage}}}}]}}


async def eventually(pred: Callable[[], Awaitable[object]], timeout: float = 30.0, what: str = "condition"):
    """Await ``pred()`` until it is truthy (the async twin of support.cluster.wait_for)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: object = None
    while loop.time() < deadline:
        try:
            last = await pred()
        except Exception as exc:  # noqa: BLE001 - keep polling through transient API errors
            last = exc
        if last and not isinstance(last, Exception):
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")
