"""Node faults: ``node-down`` stops a node's kubelet; ``node-drain`` cordons a node and evicts its pods.

LitmusChaos names them ``kubelet-service-kill`` and ``node-drain``. Stopping the kubelet as
``systemctl stop kubelet`` would leaves the node's containers running: here the kubelet process
is killed (SIGKILL, so it cannot remove its pods on the way out, which labkit's kubelet does on a
clean exit) and started again with the same command line at the end. Meanwhile nothing renews the
node's Lease; after the node-monitor grace period the node turns NotReady and is tainted
unreachable, and its pods are evicted if that lasts past the eviction timeout.
"""

from __future__ import annotations

import os
import signal
import time

from labkit.chaos.fault import Fault
from labkit.chaos.target import ChaosError
from labkit.client.rest import ApiError


class NodeDown(Fault):
    action = "node-down"
    target_help = "a node name, e.g. node-2"

    def inject(self) -> None:
        self.cluster.node(self.target)  # a clear error for a node that does not exist
        name = f"kubelet-{self.target}"
        c = self.cluster.component(name)
        self.journal.add("start-component", cluster_dir=str(self.cluster.dir), component=name)
        os.kill(c.pid, signal.SIGKILL)
        if c.proc is not None:
            c.proc.wait(10)
        self.say(f"stopped the kubelet of {self.target} (pid {c.pid}); its containers keep running")

    def undo(self) -> None:
        # start it through our handle first (a notebook's cluster then stops it with the others);
        # the journal's start-component step finds it running, or starts it if this failed
        if self.injected_at is not None:
            try:
                self.cluster.restart(f"kubelet-{self.target}")
            except Exception as exc:  # noqa: BLE001 - the journal's step tries again and reports
                self.say(f"restart failed: {exc}")
        super().undo()

    def recover(self) -> None:
        c = self.cluster.components[f"kubelet-{self.target}"]
        self.say(f"started the kubelet of {self.target} again (pid {c.pid})")


class NodeDrain(Fault):
    """``kubectl drain``: mark the node unschedulable, evict its pods (not DaemonSets'); uncordon at the end."""

    action = "node-drain"
    target_help = "a node name, e.g. node-2"

    def inject(self) -> None:
        node = self.cluster.node(self.target)
        if (node.get("spec") or {}).get("unschedulable"):
            raise ChaosError(f"node {self.target} is already cordoned; uncordon it first "
                             f"(kubectl uncordon {self.target}) so the drain can put it back as it was")
        api = self.cluster.api()
        try:
            self.journal.add("uncordon", kubeconfig=self.cluster.kubeconfig, node=self.target)
            api.call("patch", "nodes", self.target, {"spec": {"unschedulable": True}})
            self.say(f"cordoned {self.target}")
            pods = api.call("list", "pods", None, field_selector=f"spec.nodeName={self.target}").get("items") or []
            evicted = []
            for p in pods:
                md = p["metadata"]
                if any(o.get("kind") == "DaemonSet" for o in md.get("ownerReferences") or []):
                    continue
                if md.get("deletionTimestamp"):
                    continue
                body = {"apiVersion": "policy/v1", "kind": "Eviction",
                        "metadata": {"name": md["name"], "namespace": md["namespace"]}}
                try:
                    api.call("request", "POST", f"/api/v1/namespaces/{md['namespace']}/pods/{md['name']}/eviction",
                             body=body)
                    evicted.append(f"{md['namespace']}/{md['name']}")
                except ApiError as exc:
                    if exc.code != 404:
                        raise
            self.say(f"evicted {len(evicted)} pod(s): {', '.join(evicted) or 'none'}")
        finally:
            api.close()

    def recover(self) -> None:
        self.say(f"uncordoned {self.target}")


def wait_ready(cluster, node: str, timeout: float = 60.0) -> bool:
    """Whether ``node`` reports Ready=True within ``timeout`` seconds."""
    from labkit.client.conditions import is_ready

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if is_ready(cluster.node(node)):
                return True
        except (ApiError, ChaosError, OSError):
            pass
        time.sleep(0.2)
    return False
