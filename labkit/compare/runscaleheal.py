"""Run, scale and heal one app on Docker Swarm and on labkit's cluster, timing each step.

Chapter 5 prints both runs next to each other; the steps are the same (two replicas, scale to
three, kill one and wait until three run again) so the only difference is the orchestrator.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    system: str
    step: str
    seconds: float
    running: list[str]

    def line(self, app: str) -> str:
        shown = ", ".join(n.removeprefix(app + "-")[:12] for n in sorted(self.running))
        return f"{self.system:7} {self.step:26} {self.seconds:4.1f} s -> {len(self.running)} running: {shown}"


def wait_for(what: str, running: Callable[[], list[str]], want: int, gone: str | None = None,
             timeout: float = 60) -> float:
    """Poll until ``want`` replicas run (and ``gone`` is not one of them); the seconds it took."""
    t0 = time.monotonic()
    while len(now := running()) != want or gone in now:
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{what}: {len(now)} running after {timeout} s, wanted {want}")
        time.sleep(0.2)
    return time.monotonic() - t0


def on_swarm(app: str) -> Iterator[Step]:
    """The app as a Docker Swarm service on a one-node swarm (on loopback, left at the end)."""
    from labkit.images import ImageStore
    from labkit.runtime.swarm import docker, one_node_swarm

    def running() -> list[str]:
        return docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={app}").split()

    image = ImageStore().export_to_docker("busybox").ref
    with one_node_swarm():
        try:
            docker("service", "create", "-d", "--name", app, "--replicas", "2", "--no-resolve-image",
                   "--stop-grace-period", "1s", "--restart-delay", "1s", "--label", "labkit=book",
                   image, "sleep", "3600")
            yield Step("Swarm", "run 2 replicas", wait_for("swarm run", running, 2), running())
            docker("service", "scale", "-d", f"{app}=3")
            yield Step("Swarm", "scale to 3", wait_for("swarm scale", running, 3), running())
            victim = running()[0]
            docker("kill", victim)
            yield Step("Swarm", f"kill {victim[:12]}", wait_for("swarm heal", running, 3, gone=victim), running())
        finally:
            subprocess.run(["docker", "service", "rm", app], capture_output=True)


def on_kubernetes(app: str, nodes: int = 2) -> Iterator[Step]:
    """The same app as a Deployment on labkit's cluster, through the official kubernetes client."""
    import labkit

    with labkit.Cluster(nodes=nodes) as cluster:
        cluster.wait_nodes_ready()
        core, apps = cluster.core(), cluster.apps()

        def running() -> list[str]:
            pods = core.list_namespaced_pod("default", label_selector=f"app={app}").items
            return [p.metadata.name for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp]

        apps.create_namespaced_deployment("default", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": app}},
                     "template": {"metadata": {"labels": {"app": app}},
                                  "spec": {"terminationGracePeriodSeconds": 1, "containers": [
                                      {"name": "app", "image": "busybox", "command": ["sleep", "3600"]}]}}}})
        yield Step("labkit", "run 2 replicas", wait_for("labkit run", running, 2), running())
        apps.patch_namespaced_deployment_scale(app, "default", {"spec": {"replicas": 3}})
        yield Step("labkit", "scale to 3", wait_for("labkit scale", running, 3), running())
        victim = running()[0]
        core.delete_namespaced_pod(victim, "default", grace_period_seconds=0)
        yield Step("labkit", f"delete {victim.removeprefix(app + '-')}",
                   wait_for("labkit heal", running, 3, gone=victim), running())
