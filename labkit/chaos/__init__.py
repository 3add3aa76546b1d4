"""Named faults: break a running cluster on purpose, for a while, and put it back.

    from labkit import chaos
    chaos.inject(cluster, "pod-kill", target="app=web", duration=3)
    with chaos.fault(cluster, "process-pause", target="scheduler"):
        ...                                      # create pods: none is scheduled in here

The actions, named as Chaos Mesh and LitmusChaos name them, one module per family:

* :mod:`~labkit.chaos.pod` - ``pod-kill``, ``container-kill``
* :mod:`~labkit.chaos.node` - ``node-down`` (the kubelet stops), ``node-drain``
* :mod:`~labkit.chaos.network` - ``network-partition``, ``network-delay``, ``network-loss``
* :mod:`~labkit.chaos.process` - ``process-pause`` (SIGSTOP, then SIGCONT)
* :mod:`~labkit.chaos.disk` - ``store-disk-full``
* :mod:`~labkit.chaos.overload` - ``apiserver-overload`` (a burst of clients; nothing to undo)

Each takes a target and a duration and undoes itself at the end, on Ctrl-C and on SIGTERM; what
it changed is written down first (:mod:`~labkit.chaos.journal`), so ``labkit gc`` undoes the
faults of a process that was killed outright. ``labkit chaos ACTION --target T --duration S``
is the same from a shell.
"""

from __future__ import annotations

from typing import Any

from labkit.chaos.disk import StoreDiskFull, remove_small_disk, small_disk
from labkit.chaos.fault import Fault
from labkit.chaos.network import NetworkDelay, NetworkLoss, NetworkPartition, netem_works
from labkit.chaos.node import NodeDown, NodeDrain, wait_ready
from labkit.chaos.overload import ApiServerOverload
from labkit.chaos.pod import ContainerKill, PodKill
from labkit.chaos.process import ProcessPause
from labkit.chaos.target import ChaosError, ClusterTarget

#: action name -> the Fault that does it
ACTIONS: dict[str, type[Fault]] = {f.action: f for f in (
    PodKill, ContainerKill, NodeDown, NodeDrain, NetworkPartition, NetworkDelay, NetworkLoss, ProcessPause,
    StoreDiskFull, ApiServerOverload)}

__all__ = ["ACTIONS", "ChaosError", "ClusterTarget", "Fault", "fault", "inject", "netem_works", "remove_small_disk",
           "small_disk", "wait_ready"]


def fault(cluster: Any, action: str, target: str, **options: Any) -> Fault:
    """The fault ``action`` on ``target``, to use as a context manager (injected on enter, undone on exit)."""
    try:
        cls = ACTIONS[action]
    except KeyError:
        raise ChaosError(f"unknown chaos action {action!r}; choose one of: {', '.join(ACTIONS)}") from None
    return cls(cluster, target, **options)


def inject(cluster: Any, action: str, target: str, duration: float, **options: Any) -> Fault:
    """Inject ``action`` on ``target``, hold it ``duration`` seconds, undo it; returns the fault (its ``log``)."""
    f = fault(cluster, action, target, **options)
    with f:
        f.hold(duration)
    return f
