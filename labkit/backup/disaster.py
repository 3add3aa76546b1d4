"""Disaster recovery on a labkit cluster: lose the control plane's data, rebuild from a snapshot.

The run the lab and the tests make, step by step:

1. :func:`running_pods` notes each Running pod's container ID, so that "Running again" later
   means a container started after the disaster, not a status line left in the restored store;
2. the disaster: :meth:`Cluster.stop` ends every component and removes the cluster's folder,
   store included (the nodes' disks - the CSI volumes - survive, as a machine's disk would);
3. :func:`restore_cluster` restores the snapshot into a new store and starts a fresh control plane
   and kubelets on it: the kubelets register their Nodes again and start the pods the restored
   store says are bound to them;
4. :func:`wait_running_again` returns the RTO: seconds until every pod runs a new container.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

from labkit.backup.storesnapshot import RestoredStore, restore_snapshot
from labkit.client.blocking import BlockingClient
from labkit.client.conditions import is_ready


def _containers(pod: dict) -> tuple[str, ...]:
    return tuple(s.get("containerID") or "" for s in (pod.get("status") or {}).get("containerStatuses") or [])


def running_pods(kubeconfig: str, namespaces: list[str] | None = None) -> dict[str, tuple[str, ...]]:
    """``namespace/name`` -> container IDs of every Running pod (in ``namespaces``, or all)."""
    client = BlockingClient(kubeconfig, user_agent="labkit-dr")
    try:
        items = client.call("list", "pods")["items"]
    finally:
        client.close()
    return {f"{p['metadata']['namespace']}/{p['metadata']['name']}": _containers(p) for p in items
            if (p.get("status") or {}).get("phase") == "Running"
            and (namespaces is None or p["metadata"]["namespace"] in namespaces)}


def restore_cluster(snapshot: str | os.PathLike, nodes: int = 1, *, start: bool = True,
                    **cluster_args: Any) -> tuple[Any, RestoredStore]:
    """A fresh cluster on a store restored from ``snapshot``: (the started Cluster, the restored store).

    Give ``nodes`` (and node labels) as the lost cluster had them: the kubelets take their Nodes
    over by name. Stop the cluster, then the store (``restored.stop()`` ends etcd and removes the files).
    """
    from labkit.cluster import Cluster
    from labkit.paths import data_dir

    where = data_dir() / "restores" / f"r-{uuid.uuid4().hex[:8]}"
    snapshot = Path(snapshot)
    restored = restore_snapshot(snapshot, where / "store.db" if _is_sqlite(snapshot) else where / "etcd")
    restored.folder = where
    cluster = Cluster(nodes=nodes, store=restored.url, **cluster_args)
    if start:
        try:
            cluster.start()
        except BaseException:
            restored.stop()
            raise
    return cluster, restored


def _is_sqlite(path: Path) -> bool:
    from labkit.backup.storesnapshot import snapshot_backend

    return snapshot_backend(path) == "sqlite"


def wait_running_again(kubeconfig: str, before: dict[str, tuple[str, ...]], since: float,
                       timeout: float = 60.0) -> float:
    """Seconds from ``since`` (``time.monotonic()``) until every pod of ``before`` is Running and Ready
    in a container other than the one it had: the RTO. Raises TimeoutError naming the pods still down."""
    client = BlockingClient(kubeconfig, user_agent="labkit-dr")
    deadline = time.monotonic() + timeout
    waiting = dict(before)
    try:
        while True:
            try:
                items = client.call("list", "pods")["items"]
            except Exception:  # the new apiserver may still be starting
                items = []
            for p in items:
                key = f"{p['metadata']['namespace']}/{p['metadata']['name']}"
                ids = _containers(p)
                if key in waiting and (p.get("status") or {}).get("phase") == "Running" and is_ready(p) \
                        and all(ids) and ids != waiting[key]:
                    del waiting[key]
            if not waiting:
                return time.monotonic() - since
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(waiting)} pod(s) not Running again after {timeout:.0f} s: "
                                   f"{', '.join(sorted(waiting)[:5])}")
            time.sleep(0.1)
    finally:
        client.close()
