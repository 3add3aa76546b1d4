"""Find and remove what labkit runs left behind — after a crash, a kill -9, or a failed test.

A registry: each owner of something labkit makes on the host lists and removes its own
leftovers as a :class:`Kind`, and this module only asks them, in :data:`KINDS` order (containers
first: they hold mounts, cgroups and namespaces). The owners are named in ``pyproject.toml``
(entry points of the group ``labkit.gc``), so that this module imports none of them:

* ``chaos`` - faults whose process died before undoing them: paused processes, firewall rules,
  qdiscs, ballast files, a stopped kubelet (:mod:`labkit.chaos.journal`)
* ``containers``, ``processes`` - records under ``<state_dir>/runtime/<backend>/`` with their
  runc/crun state, overlay roots and pinned namespaces; shims whose records are gone
  (:mod:`labkit.runtime.gc.containers`)
* ``mounts`` - below labkit's state folder; for the default state folder also labkit-named overlay
  and nsfs mounts elsewhere, never those inside another state folder (:mod:`labkit.runtime.gc.mounts`)
* ``cgroups`` - under ``labkit/`` in every hierarchy (:mod:`labkit.runtime.gc.cgroups`)
* ``docker``, ``swarm`` - containers labelled ``labkit=1``; swarm mode and its labelled services
  only when labkit turned swarm mode on (:mod:`labkit.runtime.gc.docker`)
* ``netns``, ``links``, ``iptables`` - namespaces ``labkit-*``, interfaces and bridges ``lk*``, rules
  whose comment says ``labkit`` and chains ``LABKIT-*`` (:mod:`labkit.node.cni.leftovers`)
* ``swarm-engines`` - multi-node swarms whose owning process died: their dockerd processes,
  containers, mounts, cgroups, namespaces and bridge (:mod:`labkit.swarm.leftovers`)
* ``clusters`` - folders of notebook clusters whose processes all died; never a ``labkit cluster
  up`` cluster's, whose store may hold a user's objects (:mod:`labkit.cluster.cleanup`)
* ``classes`` - classes whose class server is gone (killed): their cluster, tokens and handouts; the
  gradebook stays (:mod:`labkit.classroom.teardown`)

:func:`find_leaks` only looks; :func:`collect` removes. ``labkit gc --dry-run`` prints the first.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass

#: every kind, in the order :func:`collect` removes them (faults first: a paused or cut-off process
#: goes back to work before anything it uses is removed)
KINDS = ("chaos", "swarm-engines", "containers", "mounts", "cgroups", "netns", "links", "iptables", "processes", "docker", "swarm",
         "clusters", "classes")
#: the kinds only root can remove
ROOT_KINDS = ("mounts", "cgroups", "netns", "links", "iptables", "swarm-engines")
ENTRY_POINTS = "labkit.gc"
DEFAULT_STATE = "/run/labkit"


@dataclass
class Leak:
    kind: str
    what: str  # a path, a name or a pid: enough to find it by hand

    def __str__(self) -> str:
        return f"{self.kind:<10} {self.what}"


@dataclass(frozen=True)
class Kind:
    """One kind of leftover, as its owner finds and removes it."""

    name: str
    find: Callable[[], list[Leak]]
    remove: Callable[[], None]


_registry: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Add (or replace) the owner of ``kind.name``."""
    _registry[kind.name] = kind
    return kind


def owner(name: str) -> Kind:
    """The :class:`Kind` registered for ``name``, loading its owner's entry point on first use."""
    if name not in _registry:
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINTS, name=name):
            register(ep.load())
            break
    try:
        return _registry[name]
    except KeyError:
        raise KeyError(f"no owner registered for gc kind {name!r}; reinstall labkit (make setup) so its "
                       f"{ENTRY_POINTS!r} entry points are known") from None


def run(argv: list[str]) -> subprocess.CompletedProcess:
    """Run a host command for an owner; a missing binary or a hang is a failed run, not an error."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(argv, 1, "", str(exc))


def find_leaks(kinds: tuple[str, ...] | list[str] = KINDS) -> list[Leak]:
    """Everything labkit-named that exists right now (nothing is changed)."""
    out: list[Leak] = []
    for k in kinds:
        out += owner(k).find()
    return out


def collect(kinds: tuple[str, ...] | list[str] = KINDS) -> list[Leak]:
    """Remove leftovers, containers first (they hold mounts, cgroups and namespaces); return what remains."""
    for k in KINDS:
        if k in kinds:
            owner(k).remove()
    return find_leaks(kinds)
