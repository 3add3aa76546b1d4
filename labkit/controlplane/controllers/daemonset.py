"""DaemonSet controller: one pod of the template on every node that should run it.

A node should run the DaemonSet's pod when the template's ``nodeSelector`` matches its labels and
the pod tolerates its NoSchedule and NoExecute taints, counting the tolerations Kubernetes adds
to every daemon pod (not-ready and unreachable NoExecute, so a daemon is not evicted from a
failing node; unschedulable, disk/memory/pid pressure NoSchedule, so a cordoned node still runs its
daemons). Each sync compares those nodes with the pods the DaemonSet controls:

* a node without a pod gets one. As in Kubernetes since 1.12, the controller does not bind it:
  it gives the pod a required node affinity ``matchFields metadata.name In [NODE]`` and the
  scheduler places it, so scheduling rules (resources, ports) apply to daemons too;
* a pod on a node that should not run it (label changed, taint added, node deleted) is deleted;
  on a node that is gone it is deleted at once (grace 0: no kubelet is left to confirm);
* a RollingUpdate replaces pods whose ``controller-revision-hash`` is not the template's, at
  most ``maxUnavailable`` nodes at a time, counting nodes whose daemon is not Ready.
"""

from __future__ import annotations

import copy

from labkit.client.conditions import is_ready
from labkit.client.informer import key_of
from labkit.client.pods import is_pod_active, is_pod_ready
from labkit.client.rest import ApiError
from labkit.client.taints import tolerates
from labkit.controlplane.controllers import rollout
from labkit.controlplane.controllers.base import Controller, OwnsPods, controller_of, owner_ref, split_key
from labkit.controlplane.controllers.replicaset import Expectations, random_suffix

REVISION_LABEL = "controller-revision-hash"

DAEMON_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]
HOST_NETWORK_TOLERATION = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
                           "effect": "NoSchedule"}


def daemon_tolerations(pod_spec: dict) -> list[dict]:
    """The template's tolerations plus the ones Kubernetes adds to every daemon pod (no duplicates)."""
    tols = list(pod_spec.get("tolerations") or [])
    extra = DAEMON_TOLERATIONS + ([HOST_NETWORK_TOLERATION] if pod_spec.get("hostNetwork") else [])
    for t in extra:
        if not any(x.get("key") == t["key"] and x.get("effect") == t["effect"] for x in tols):
            tols.append(dict(t))
    return tols


def should_run(ds: dict, node: dict) -> bool:
    """Does ``node`` belong to this DaemonSet: selector matched and every hard taint tolerated?"""
    pod_spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (pod_spec.get("nodeSelector") or {}).items()):
        return False
    tols = daemon_tolerations(pod_spec)
    return all(tolerates(tols, t) for t in (node.get("spec") or {}).get("taints") or []
               if t.get("effect") in ("NoSchedule", "NoExecute"))


def node_of(pod: dict) -> str | None:
    """The node a daemon pod is for: where it is bound, or the node its affinity names."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return spec["nodeName"]
    req = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
           .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in req.get("nodeSelectorTerms") or []:
        for f in term.get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("operator") == "In" and f.get("values"):
                return f["values"][0]
    return None


def template_revision(ds: dict) -> str:
    return rollout.template_hash((ds.get("spec") or {}).get("template") or {})


class DaemonSetController(OwnsPods, Controller):
    name = "daemonset-controller"
    OWNER_KIND = "DaemonSet"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.ds = self.informers.get("daemonsets")
        self.pods = self.informers.get("pods")
        self.nodes = self.informers.get("nodes")
        self.expectations = Expectations()
        self.ds.add_handler(lambda o: self.queue.add(key_of(o)), lambda o, n: self.queue.add(key_of(n)),
                            lambda o: self.expectations.clear(key_of(o)))
        self.pods.add_handler(self._pod_added, lambda o, n: self._pod_changed(n), self._pod_changed)
        self.nodes.add_handler(self._all, lambda o, n: self._node_updated(o, n), self._all)

    def _pod_changed(self, pod: dict) -> None:
        k = self._owner_key(pod)
        if k:
            self.queue.add(k)

    def _all(self, _node: dict | None = None) -> None:
        for ds in self.ds.cache.values():
            self.queue.add(key_of(ds))

    def _node_updated(self, old: dict, new: dict) -> None:
        # heartbeats change status only; labels, taints and readiness are what matter here
        if old["metadata"].get("labels") != new["metadata"].get("labels") or \
                (old.get("spec") or {}) != (new.get("spec") or {}) or is_ready(old) != is_ready(new):
            self._all()

    def owned_pods(self, ds: dict) -> list[dict]:
        uid, ns = ds["metadata"]["uid"], ds["metadata"].get("namespace", "default")
        return [p for p in self.pods.cache.values()
                if p["metadata"].get("namespace") == ns and (controller_of(p) or {}).get("uid") == uid]

    async def sync(self, key: str) -> None:
        ds = self.ds.cache.get(key)
        if ds is None or ds["metadata"].get("deletionTimestamp"):
            return
        nodes = {n["metadata"]["name"]: n for n in self.nodes.cache.values()}
        wanted = {name for name, n in nodes.items() if should_run(ds, n)}
        pods = self.owned_pods(ds)
        by_node: dict[str, list[dict]] = {}
        for p in pods:
            if is_pod_active(p) or (p.get("status") or {}).get("phase") == "Failed":
                by_node.setdefault(node_of(p) or "", []).append(p)
        revision = template_revision(ds)
        if self.expectations.satisfied(key):
            create: list[str] = []
            delete: list[tuple[dict, int | None]] = []
            for node, ps in by_node.items():
                gone = node not in nodes
                for p in ps:
                    failed = (p.get("status") or {}).get("phase") == "Failed"
                    if node not in wanted or failed:
                        delete.append((p, 0 if gone else None))
                alive = [p for p in ps if is_pod_active(p)]
                if node in wanted and len(alive) > 1:  # duplicates: keep the oldest
                    alive.sort(key=lambda p: p["metadata"].get("creationTimestamp", ""))
                    delete += [(p, None) for p in alive[1:]]
            for node in sorted(wanted):
                if not any(is_pod_active(p) for p in by_node.get(node, [])):
                    create.append(node)
            if not create and not delete:
                delete = [(p, None) for p in self._rolling_victims(ds, wanted, by_node, revision)]
            self.expectations.expect(key, adds=len(create))
            for node in create:
                await self._create_pod(key, ds, node, revision)
            for p, grace in delete:
                await self._delete_pod(ds, p, grace)
        await self._update_status(ds, wanted, by_node, revision)

    def _rolling_victims(self, ds: dict, wanted: set[str], by_node: dict[str, list[dict]], revision: str) -> list[dict]:
        strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return []  # OnDelete: new pods only where the user deleted the old ones
        max_unavailable = max(1, rollout.resolve((strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1),
                                                 len(wanted), round_up=True, default="1"))
        old_ready, old_unready, unavailable = [], [], 0
        for node in sorted(wanted):
            alive = [p for p in by_node.get(node, []) if is_pod_active(p)]
            if not alive or not is_pod_ready(alive[0]):
                unavailable += 1
            for p in alive:
                if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) != revision:
                    (old_ready if is_pod_ready(p) else old_unready).append(p)
        # an old pod that is not ready costs nothing to replace; ready ones within the budget
        budget = max(0, max_unavailable - unavailable)
        return old_unready + old_ready[:budget]

    async def _create_pod(self, key: str, ds: dict, node: str, revision: str) -> None:
        tmpl = copy.deepcopy((ds.get("spec") or {}).get("template") or {})
        md = tmpl.get("metadata") or {}
        spec = tmpl.get("spec") or {}
        spec["tolerations"] = daemon_tolerations(spec)
        affinity = spec.setdefault("affinity", {})
        affinity.setdefault("nodeAffinity", {})["requiredDuringSchedulingIgnoredDuringExecution"] = {
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}
        ns = ds["metadata"].get("namespace", "default")
        name = f"{ds['metadata']['name']}-{random_suffix()}"
        labels = {**(md.get("labels") or {}), REVISION_LABEL: revision, "pod-template-generation":
                  str(ds["metadata"].get("generation", 1))}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": ns, "labels": labels,
                            "annotations": dict(md.get("annotations") or {}), "ownerReferences": [owner_ref(ds)]},
               "spec": spec}
        try:
            await self.client.create("pods", pod, namespace=ns)
        except Exception:
            self.expectations.observed(key, adds=1)
            raise
        self.recorder.event(ds, "Normal", "SuccessfulCreate", f"Created pod: {name}")

    async def _delete_pod(self, ds: dict, pod: dict, grace: int | None) -> None:
        md = pod["metadata"]
        if md.get("deletionTimestamp") and grace is None:
            return
        try:
            await self.client.delete("pods", md["name"], md.get("namespace"), grace_period=grace)
        except ApiError as exc:
            if not exc.not_found:
                raise
            return
        self.recorder.event(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {md['name']}")

    async def _update_status(self, ds: dict, wanted: set[str], by_node: dict[str, list[dict]], revision: str) -> None:
        def alive(node: str) -> list[dict]:
            return [p for p in by_node.get(node, []) if is_pod_active(p)]
        scheduled = [n for n in wanted if alive(n)]
        ready = [n for n in scheduled if any(is_pod_ready(p) for p in alive(n))]
        updated = [n for n in scheduled if any((p["metadata"].get("labels") or {}).get(REVISION_LABEL) == revision
                                               for p in alive(n))]
        status = {
            "desiredNumberScheduled": len(wanted),
            "currentNumberScheduled": len(scheduled),
            "numberMisscheduled": sum(1 for n in by_node if n not in wanted and alive(n)),
            "numberReady": len(ready),
            "updatedNumberScheduled": len(updated),
            "numberAvailable": len(ready),
            "numberUnavailable": len(wanted) - len(ready),
            "observedGeneration": ds["metadata"].get("generation", 1),
        }
        old = ds.get("status") or {}
        if all(old.get(k, 0) == v for k, v in status.items()):
            return
        ns, name = split_key(key_of(ds))
        await self.client.patch("daemonsets", name, {"status": status}, ns, sub="status")
