"""What a cluster leaves when it stops, or when its notebook died before it could stop it.

``Cluster.stop()`` removes the sandboxes a killed kubelet left (:func:`sweep_pods`) and every
node's network and sockets (:func:`remove_nodes`). A notebook killed outright leaves its
cluster's folder: :func:`stale_clusters` finds those (also for ``labkit gc``, whose
``clusters`` kind is :data:`CLUSTERS`).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from labkit.cluster import statefile
from labkit.cluster.supervisor import pid_alive
from labkit.runtime.gc import Kind, Leak

log = logging.getLogger(__name__)


def sweep_pods(runtime_name: str, url: str) -> None:
    """Remove sandboxes a killed kubelet left behind (those labelled for the API server at ``url``)."""
    import labkit.runtime as runtimes
    from labkit.node.kubelet import containers as C
    from labkit.node.teardown import remove_pod_netns
    from labkit.runtime.podteardown import remove_pod

    try:
        rt = runtimes.get(runtime_name)
    except Exception:  # noqa: BLE001 - this runtime cannot run here: nothing to sweep with
        return
    try:
        suffix = f"@{url}"
        for sb in rt.list_pod_sandboxes():
            if not sb.labels.get(C.NODE, "").endswith(suffix):
                continue
            # the pod's network goes with its node's namespace in remove_nodes()
            try:
                remove_pod(rt, sb.id)
            except Exception:  # noqa: BLE001 - keep sweeping the other sandboxes
                pass
            if not sb.netns_path:
                try:
                    remove_pod_netns(sb.id)
                except Exception as exc:  # noqa: BLE001 - not there, or not root
                    log.debug("pod netns of %s: %s", sb.id[:12], exc)
    finally:
        rt.close()


def remove_nodes(kubeconfig: str, node_names: list[str]) -> None:
    """Every node's network namespace, router entry, IPAM files and plug-in sockets, removed once
    its kubelet is gone (a SIGKILLed kubelet could not close them itself)."""
    from labkit.node.scope import cluster_scope
    from labkit.node.teardown import remove_node

    if not kubeconfig or not Path(kubeconfig).exists() or not cluster_scope(kubeconfig):
        return  # never started (or already stopped): no scope, so nothing of ours to name
    for node in node_names:
        try:
            remove_node(node, kubeconfig)
        except Exception as exc:  # noqa: BLE001 - keep removing the other nodes
            log.warning("removing node %s's network: %s", node, exc)


def stale_clusters() -> list[Path]:
    """Folders left by notebook clusters whose process died without stop() (nothing of them runs).

    Only folders that say they were not meant to be kept, whose creating process is gone and none
    of whose component processes is alive; ``labkit cluster up`` clusters are never listed: their
    store may hold a user's objects, and ``labkit cluster down --name`` removes them.
    """
    stale = []
    for folder, info in statefile.all_states():
        if info.get("keep_state", True) or pid_alive(info.get("owner_pid")):
            continue
        if not any(c.alive for c in statefile.components(info).values()):
            stale.append(folder)
    return stale


def remove_stale_clusters() -> list[str]:
    """Delete the folders :func:`stale_clusters` lists; returns their names."""
    removed = []
    for folder in stale_clusters():
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder.name)
    return removed


def _cluster_leaks() -> list[Leak]:
    return [Leak("clusters", str(folder)) for folder in stale_clusters()]


def _remove_clusters() -> None:
    remove_stale_clusters()


CLUSTERS = Kind("clusters", _cluster_leaks, _remove_clusters)
