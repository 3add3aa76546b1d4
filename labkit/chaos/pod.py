"""PodChaos: ``pod-kill`` deletes a pod at once; ``container-kill`` kills one of its containers.

Named as in Chaos Mesh (PodChaos ``pod-kill``, ``container-kill``) and LitmusChaos (``pod-delete``,
``container-kill``). Nothing is put back by hand at the end: bringing the pod or the container
back is the cluster's job (the ReplicaSet makes a new pod; the kubelet restarts the container),
and what the fault shows is whether it does.
"""

from __future__ import annotations

from labkit.chaos.fault import Fault
from labkit.chaos.target import ChaosError


def _name(pod: dict) -> str:
    return f"{pod['metadata'].get('namespace', 'default')}/{pod['metadata']['name']}"


class PodKill(Fault):
    """Delete a pod with grace period 0, as ``kubectl delete pod --grace-period=0 --force`` does."""

    action = "pod-kill"
    target_help = "a pod: [namespace/]name, or a label selector such as app=web (the first running pod)"

    def inject(self) -> None:
        pod = self.cluster.pod(self.target)
        md = pod["metadata"]
        api = self.cluster.api()
        try:
            api.call("delete", "pods", md["name"], md.get("namespace", "default"), grace_period=0)
        finally:
            api.close()
        self.victim = _name(pod)
        self.say(f"deleted pod {self.victim} on {pod['spec'].get('nodeName', '?')} (grace period 0)")


class ContainerKill(Fault):
    """Stop a container through its node's runtime with no grace (CRI StopContainer, timeout 0: SIGKILL)."""

    action = "container-kill"
    target_help = "a pod, as for pod-kill; --container picks one (default: the first)"

    def inject(self) -> None:
        pod = self.cluster.pod(self.target)
        want = self.options.get("container")
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        status = next((s for s in statuses if not want or s["name"] == want), None)
        if status is None or not status.get("containerID"):
            names = ", ".join(s["name"] for s in statuses) or "none running yet"
            raise ChaosError(f"pod {_name(pod)} has no running container {want or ''} (containers: {names})")
        node = pod["spec"]["nodeName"]
        cid = status["containerID"].split("://", 1)[-1]
        rt = self._runtime(node)
        try:
            rt.stop_container(cid, timeout=0)
        finally:
            rt.close()
        self.victim = _name(pod)
        self.restarts_before = status.get("restartCount", 0)
        self.say(f"killed container {status['name']} of pod {self.victim} through {node}'s runtime "
                 f"(CRI StopContainer, timeout 0); it had restarted {self.restarts_before} time(s)")

    def _runtime(self, node: str):
        if self.cluster.cri:
            from labkit.node.cri.remote import RemoteRuntime

            return RemoteRuntime(str(self.cluster.dir / f"{node}-cri.sock"))
        import labkit.runtime as runtimes

        return runtimes.get(self.cluster.runtime)
