"""Remove a pod sandbox and its containers from a runtime: the one teardown every caller shares.

The kubelet (a deleted pod), the cluster's clean-up (sandboxes a killed kubelet left) and
``labkit run`` (its one-container sandbox) all take a pod apart the same way, in the CRI's
order: stop what still runs, remove the containers, then stop and remove the sandbox.
It sits at the runtime level so that all three may import it; it imports nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from labkit.runtime.base import Runtime


def remove_pod(rt: Runtime, sandbox_id: str | None, container_ids: Iterable[str] | None = None, *,
               stop: bool = True, grace: float = 1.0) -> None:
    """Stop and remove ``sandbox_id``'s containers, then the sandbox itself.

    ``container_ids`` names the containers when the caller knows them (``labkit run``); otherwise
    the runtime lists the sandbox's own. With ``stop=False`` nothing is stopped first: the caller
    knows its containers have exited. Every step is tried even when one fails (a half-removed pod
    is worse than a slow one); the first failure is raised at the end.
    """
    first: Exception | None = None
    if container_ids is None:
        containers = [(cs.id, cs.state.name == "RUNNING") for cs in rt.list_containers(sandbox_id)] \
            if sandbox_id else []
    else:
        containers = [(cid, stop) for cid in container_ids if cid]
    for cid, running in containers:
        try:
            if stop and running:
                rt.stop_container(cid, grace)
            rt.remove_container(cid)
        except Exception as exc:  # noqa: BLE001 - keep removing the rest, raise the first below
            first = first or exc
    if sandbox_id:
        try:
            if stop:
                rt.stop_pod_sandbox(sandbox_id)
            rt.remove_pod_sandbox(sandbox_id)
        except Exception as exc:  # noqa: BLE001
            first = first or exc
    if first is not None:
        raise first
