"""A pod's end on this node: everything it had there goes, whoever noticed it should.

The pod worker calls it when a pod is deleted; the kubelet, for sandboxes of pods that no longer
exist (after a restart) and for every pod when it stops with ``kill_pods``.
"""

from __future__ import annotations

import logging

from labkit.client.informer import key_of
from labkit.errors import LabkitError
from labkit.node.kubelet import volumes
from labkit.node.kubelet.nodecontext import NodeContext
from labkit.runtime.base import PodSandboxStatus
from labkit.runtime.podteardown import remove_pod

log = logging.getLogger(__name__)


async def cleanup_pod(node: NodeContext, pod: dict, sandbox: PodSandboxStatus | None) -> None:
    """Everything a pod had on this node goes: containers, network, volumes, devices, sandbox."""
    uid = pod["metadata"].get("uid", "")
    if sandbox is not None:
        try:
            await node.call_runtime(node.plugins.network.teardown_pod, pod, sandbox)
        except Exception:  # noqa: BLE001 - keep cleaning
            log.exception("network teardown for %s", key_of(pod))
        try:
            await node.call_runtime(remove_pod, node.runtime, sandbox.id)
        except LabkitError as exc:
            log.info("removing sandbox of %s: %s", key_of(pod), exc)
    for fn in (node.plugins.volumes.unmount_pod_volumes, node.plugins.devices.release_pod):
        try:
            await node.call_runtime(fn, pod)
        except Exception:  # noqa: BLE001
            log.exception("plugin cleanup for %s", key_of(pod))
    if not node.hollow:
        volumes.remove_pod_dir(node.state, uid)
