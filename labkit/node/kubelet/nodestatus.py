"""The Node object a kubelet registers: capacity, addresses, conditions and nodeInfo.

``nodeInfo.containerRuntimeVersion`` names the runtime that really runs the containers
(``native://…``, ``runc://…``, ``docker://…``, ``simulated://…``), so ``kubectl get nodes -o
wide`` tells the truth about every node.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from labkit.client.events import now_iso

KUBELET_VERSION = "v1.33.0-labkit"


def host_capacity() -> dict[str, str]:
    mem = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        mem = 8 * 2**30
    return {"cpu": str(os.cpu_count() or 1), "memory": f"{mem // 2**10}Ki", "pods": "110",
            "ephemeral-storage": "20Gi"}


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def node_object(name: str, *, capacity: dict[str, str], runtime_version: str, port: int,
                labels: dict[str, str] | None = None, taints: list[dict] | None = None,
                address: str = "127.0.0.1", allocatable: dict[str, str] | None = None, ready: bool = True,
                message: str = "kubelet is posting ready status") -> dict:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    base_labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": arch,
                   "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": arch}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {**base_labels, **(labels or {})},
                     "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
        "spec": {"taints": taints} if taints else {},
        "status": node_status(name, capacity=capacity, runtime_version=runtime_version, port=port, address=address,
                              allocatable=allocatable, ready=ready, message=message),
    }


def node_status(name: str, *, capacity: dict[str, str], runtime_version: str, port: int,
                address: str = "127.0.0.1", ready: bool = True, message: str = "kubelet is posting ready status",
                allocatable: dict[str, str] | None = None) -> dict:
    """``allocatable`` defaults to ``capacity``; it differs when some devices are unhealthy."""
    now = now_iso()
    cond = lambda t, s, r, m: {"type": t, "status": s, "reason": r, "message": m,  # noqa: E731
                               "lastHeartbeatTime": now, "lastTransitionTime": now}
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {
        "capacity": dict(capacity),
        "allocatable": dict(capacity if allocatable is None else allocatable),
        "conditions": [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            cond("Ready", "True" if ready else "False", "KubeletReady" if ready else "KubeletNotReady", message),
        ],
        "addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        "nodeInfo": {
            "machineID": _read("/etc/machine-id", "labkit"), "systemUUID": name,
            "bootID": _read("/proc/sys/kernel/random/boot_id", "labkit"),
            "kernelVersion": platform.release(), "osImage": _os_image(),
            "containerRuntimeVersion": runtime_version, "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": KUBELET_VERSION, "operatingSystem": "linux", "architecture": arch,
        },
    }


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.system()
