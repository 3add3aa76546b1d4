"""The cluster a fault is aimed at, and the things in it a fault names (pods, nodes, components).

A fault reaches the cluster the way ``labkit cluster status`` does: through its state file
(``<state>/clusters/<name>/cluster.json``), which names the API server, the kubeconfig and every
component's pid and command line. A notebook passes its :class:`~labkit.cluster.Cluster` instead,
so that a component the fault restarts is the notebook's to stop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.client.blocking import BlockingClient
from labkit.client.rest import ApiError
from labkit.cluster import statefile
from labkit.cluster.supervisor import Component, spawn


class ChaosError(Exception):
    """A fault cannot be injected as asked (the message says why and what to do instead)."""


def api_client(kubeconfig: str) -> BlockingClient:
    return BlockingClient(kubeconfig, user_agent="labkit-chaos", timeout=15.0)


@dataclass
class ClusterTarget:
    """Enough of a cluster to break it and mend it: its folder, kubeconfig and component processes."""

    name: str
    dir: Path
    kubeconfig: str
    url: str
    runtime: str
    cri: bool
    store: str
    components: dict[str, Component]
    cluster: Any = field(default=None, repr=False)  # the notebook's Cluster, when one was given

    @classmethod
    def of(cls, cluster: Any) -> ClusterTarget:
        """From a :class:`~labkit.cluster.Cluster` object, a cluster name, or a ClusterTarget."""
        if isinstance(cluster, ClusterTarget):
            return cluster
        if isinstance(cluster, str):
            try:
                info = statefile.read(cluster)
            except Exception as exc:  # ClusterError: say it in the fault's words
                raise ChaosError(str(exc)) from None
            folder = statefile.clusters_dir() / cluster
            return cls(info["name"], folder, info["kubeconfig"], info["url"], info["runtime"], info.get("cri", True),
                       info.get("store", "sqlite"), statefile.components(info))
        if not getattr(cluster, "processes", False) or not hasattr(cluster, "dir"):
            raise ChaosError("faults need a cluster whose components run as processes: "
                             "Cluster(processes=True) or 'labkit cluster up'")
        return cls(cluster.name, Path(cluster.dir), cluster.kubeconfig, cluster.url, cluster.runtime_name, cluster.cri,
                   cluster.store_spec, cluster.components, cluster)

    # ---------------------------------------------------------------- components
    def component(self, name: str) -> Component:
        c = self.components.get(name)
        if c is None or not c.alive:
            have = ", ".join(sorted(n for n, x in self.components.items() if x.alive))
            raise ChaosError(f"no running component {name!r} in cluster {self.name}; running: {have}")
        return c

    def restart(self, name: str) -> Component:
        """Start a component again with the command line it last ran with."""
        c = restart_component(self.dir, name, die_with_parent=bool(getattr(self.cluster, "die_with_parent", False)))
        self.components[name] = c
        return c

    # ---------------------------------------------------------------- the API
    def api(self) -> BlockingClient:
        return api_client(self.kubeconfig)

    def pod(self, target: str) -> dict:
        """A pod named ``[namespace/]name``, or the first running pod a label selector (``app=web``) matches."""
        ns, _, name = target.rpartition("/")
        ns = ns or "default"
        api = self.api()
        try:
            if "=" in name:
                items = api.call("list", "pods", ns, label_selector=name).get("items") or []
                running = sorted((p for p in items if (p.get("status") or {}).get("phase") == "Running"
                                  and not p["metadata"].get("deletionTimestamp")),
                                 key=lambda p: p["metadata"]["name"])
                if not running:
                    raise ChaosError(f"no running pod in namespace {ns} matches {name!r}")
                return running[0]
            try:
                return api.get("pods", name, ns)
            except ApiError as exc:
                if exc.code == 404:
                    raise ChaosError(f"no pod {ns}/{name}; give [namespace/]name or a label selector "
                                     "such as app=web") from None
                raise
        finally:
            api.close()

    def node(self, name: str) -> dict:
        api = self.api()
        try:
            return api.get("nodes", name)
        except ApiError as exc:
            if exc.code == 404:
                raise ChaosError(f"no node {name!r} in cluster {self.name}") from None
            raise
        finally:
            api.close()


def restart_component(cluster_dir: Path, name: str, die_with_parent: bool = False) -> Component:
    """Start ``name`` from the cluster's state file and write its new pid there (used by ``labkit gc`` too)."""
    f = cluster_dir / statefile.STATE_FILE
    info = json.loads(f.read_text())
    old = (info.get("components") or {}).get(name)
    if not old or not old.get("cmd"):
        raise ChaosError(f"cluster state {f} names no component {name!r} to start")
    running = statefile.components(info)[name]
    if running.alive:
        return running
    c = spawn(name, old["cmd"], old["log"], str(cluster_dir), die_with_parent)
    info["components"][name] = {**old, "pid": c.pid}
    from labkit.atomicfile import write_atomic

    write_atomic(f, json.dumps(info, indent=1))
    return c
