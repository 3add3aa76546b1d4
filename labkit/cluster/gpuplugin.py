"""The sample GPU device plugin deployed as real clusters deploy node agents: a DaemonSet.

NVIDIA's plugin runs as a DaemonSet in ``kube-system``: one pod per node, privileged, with the
kubelet's device-plugin directory mounted from the host, where it serves its socket and calls the
kubelet's ``Register``. labkit's plugin is Python, and a labkit container image (busybox) has none,
so the pod also mounts the host's root at ``/host`` and ``chroot``s into it to start labkit's
Python there. Everything after that is the protocol of :mod:`labkit.node.deviceplugin`, unchanged.

The devices are simulated (``--simulated``: device nodes made with ``mknod``); the DaemonSet, its
pods and the plugin's log say so. Where a pod cannot do this (the simulated runtime runs no
process; without root the pod cannot create the sockets or device nodes), the cluster starts the
plugin inside each kubelet instead (:func:`daemonset_runs_here` says why).
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import labkit
from labkit import paths
from labkit.client import ApiError
from labkit.client.blocking import BlockingClient
from labkit.node.scope import cluster_scope, node_id

NAME = "labkit-gpu-device-plugin"
NAMESPACE = "kube-system"
RESOURCE = "nvidia.com/gpu"
#: on the DaemonSet and its pods: these GPUs are not real
SIMULATED_LABEL = "labkit.dev/devices"
#: kubelet's conventional place for it; after chroot the plugin uses the same folder at its host path
CONTAINER_PLUGIN_DIR = "/var/lib/kubelet/device-plugins"
#: runtimes whose containers run a real process that can chroot into the host's root
PROCESS_RUNTIMES = ("native", "runc", "crun", "oci")


def daemonset_runs_here(runtime_name: str) -> tuple[bool, str]:
    """Can the plugin run as a pod on this cluster's nodes; if not, the reason."""
    if runtime_name not in PROCESS_RUNTIMES:
        return False, (f"the {runtime_name} runtime cannot run the plugin's pod (it needs a container that "
                       f"chroots into the host: runtime {' or '.join(PROCESS_RUNTIMES)})")
    if not paths.is_root():
        return False, "the plugin's pod needs root (it creates sockets in the kubelet's folder and device nodes)"
    return True, ""


def gpu_plugin_daemonset(count: int, kubeconfig: str) -> dict:
    """The DaemonSet: ``count`` simulated GPUs per node, registered with each node's kubelet."""
    plugin_root = paths.state_dir() / "device-plugins"
    prefix = str(plugin_root / node_id("", cluster_scope(kubeconfig)))  # + the node's name
    source = str(Path(labkit.__file__).resolve().parent.parent)
    script = (f"exec chroot /host {shlex.quote(sys.executable)} -m labkit.node.deviceplugin "
              f"--kubelet-dir {shlex.quote(prefix)}\"$NODE_NAME\" --count {int(count)} --simulated")
    labels = {"name": NAME, SIMULATED_LABEL: "simulated"}
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": NAME, "namespace": NAMESPACE,
                     "labels": {**labels, "app.kubernetes.io/managed-by": "labkit"},
                     "annotations": {SIMULATED_LABEL: f"{count} simulated {RESOURCE} per node: device nodes "
                                                      "made with mknod (c 1:3, like /dev/null), not real GPUs"}},
        "spec": {
            "selector": {"matchLabels": {"name": NAME}},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "tolerations": [{"key": RESOURCE, "operator": "Exists", "effect": "NoSchedule"},
                                    {"key": "CriticalAddonsOnly", "operator": "Exists"}],
                    "terminationGracePeriodSeconds": 5,
                    "containers": [{
                        "name": "plugin", "image": "busybox", "command": ["sh", "-c", script],
                        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                                {"name": "LABKIT_STATE", "value": str(paths.state_dir())},
                                {"name": "PYTHONPATH", "value": source},
                                {"name": "PYTHONUNBUFFERED", "value": "1"}],
                        "securityContext": {"privileged": True},
                        "volumeMounts": [{"name": "device-plugin", "mountPath": CONTAINER_PLUGIN_DIR},
                                         {"name": "host-root", "mountPath": "/host"}],
                    }],
                    "volumes": [
                        {"name": "device-plugin", "hostPath": {"path": str(plugin_root), "type": "DirectoryOrCreate"}},
                        {"name": "host-root", "hostPath": {"path": "/", "type": "Directory"}},
                    ],
                },
            },
        },
    }


def node_gpus(client: BlockingClient) -> dict[str, str | None]:
    """Node name -> its allocatable ``nvidia.com/gpu`` (None where it has none)."""
    nodes = client.call("list", "nodes").get("items") or []
    return {n["metadata"]["name"]: ((n.get("status") or {}).get("allocatable") or {}).get(RESOURCE)
            for n in nodes}


def install_gpu_plugin(kubeconfig: str, count: int, nodes: list[str], timeout: float = 90.0) -> None:
    """Apply the DaemonSet and wait until every node in ``nodes`` advertises ``count`` GPUs."""
    from labkit.cluster.supervisor import ClusterError

    client = BlockingClient(kubeconfig, user_agent="labkit-cluster/gpu-plugin", timeout=10)
    try:
        try:
            client.call("create", "daemonsets", gpu_plugin_daemonset(count, kubeconfig), namespace=NAMESPACE)
        except ApiError as exc:
            if exc.code != 409:
                raise
        deadline = time.time() + timeout
        have: dict[str, str | None] = {}
        while time.time() < deadline:
            have = node_gpus(client)
            if all(have.get(n) == str(count) for n in nodes):
                return
            time.sleep(0.3)
        raise ClusterError(f"the GPU device plugin DaemonSet did not register {count} {RESOURCE} on every node "
                           f"in {timeout:.0f}s (allocatable now: {have}); see "
                           f"'kubectl -n {NAMESPACE} logs -l name={NAME}'")
    finally:
        client.close()
