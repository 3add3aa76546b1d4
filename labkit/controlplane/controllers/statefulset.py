"""StatefulSet controller: pods with stable names ``NAME-0 … NAME-(N-1)``, each with its own claims.

Unlike a ReplicaSet's interchangeable pods, pod *i* of a StatefulSet is always called ``NAME-i``,
gets the hostname ``NAME-i`` in the subdomain of ``spec.serviceName`` (the headless Service the user
creates), and mounts the claims ``TEMPLATE-NAME-i`` made from ``volumeClaimTemplates``. A claim is
created before its pod and outlives it: a pod deleted, or scaled away and back, comes back with
the same name and the same data.

With ``podManagementPolicy: OrderedReady`` (the default) the controller works one ordinal at a
time: it creates ``NAME-i`` only when every lower ordinal is Running and Ready, and scales down
from the highest ordinal, one pod at a time. A ``RollingUpdate`` then replaces pods whose
``controller-revision-hash`` is not the template's, highest ordinal first, each only when all the
others are Ready (``partition`` keeps the lower ordinals on the old template). ``Parallel`` creates
and deletes without waiting. Kubernetes keeps revisions as ControllerRevision objects; labkit keeps
the hash in the pod label and the StatefulSet's status only.
"""

from __future__ import annotations

import copy
import re

from labkit.client.informer import key_of
from labkit.client.pods import is_pod_ready
from labkit.client.rest import ApiError
from labkit.controlplane.controllers import rollout
from labkit.controlplane.controllers.base import Controller, controller_of, owner_ref, split_key

REVISION_LABEL = "controller-revision-hash"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def ordinal(sts_name: str, pod_name: str) -> int | None:
    m = re.fullmatch(re.escape(sts_name) + r"-(\d+)", pod_name)
    return int(m.group(1)) if m else None


def claim_name(template: dict, pod_name: str) -> str:
    return f"{template['metadata']['name']}-{pod_name}"


def revision_of(sts: dict) -> str:
    return f"{sts['metadata']['name']}-{rollout.template_hash((sts.get('spec') or {}).get('template') or {})}"


def _terminating(pod: dict) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def _phase(pod: dict) -> str:
    return (pod.get("status") or {}).get("phase", "Pending")


def _running_ready(pod: dict) -> bool:
    return _phase(pod) == "Running" and is_pod_ready(pod) and not _terminating(pod)


class StatefulSetController(Controller):
    name = "statefulset-controller"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.sts = self.informers.get("statefulsets")
        self.pods = self.informers.get("pods")
        self.claims = self.informers.get("persistentvolumeclaims")
        self.sts.add_handler(lambda o: self.queue.add(key_of(o)), lambda o, n: self.queue.add(key_of(n)))
        self.pods.add_handler(self._pod_changed, lambda o, n: self._pod_changed(n), self._pod_changed)

    def _pod_changed(self, pod: dict) -> None:
        ref = controller_of(pod)
        if ref and ref.get("kind") == "StatefulSet":
            self.queue.add(f"{pod['metadata'].get('namespace', 'default')}/{ref['name']}")

    def owned_pods(self, sts: dict) -> dict[int, dict]:
        uid, ns, name = sts["metadata"]["uid"], sts["metadata"].get("namespace", "default"), sts["metadata"]["name"]
        out = {}
        for p in self.pods.cache.values():
            if p["metadata"].get("namespace") == ns and (controller_of(p) or {}).get("uid") == uid:
                i = ordinal(name, p["metadata"]["name"])
                if i is not None:
                    out[i] = p
        return out

    async def sync(self, key: str) -> None:
        sts = self.sts.cache.get(key)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return
        spec = sts.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        ordered = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        revision = revision_of(sts)
        pods = self.owned_pods(sts)
        await self._step(sts, pods, replicas, ordered, revision)
        await self._update_status(sts, self.owned_pods(sts), replicas, revision)

    async def _step(self, sts: dict, pods: dict[int, dict], replicas: int, ordered: bool, revision: str) -> None:
        # 1. failed pods are deleted, to be made again under the same name
        for _, p in sorted(pods.items()):
            if _phase(p) == "Failed" and not _terminating(p):
                await self._delete(sts, p)
                if ordered:
                    return
        # 2. create the missing ordinals, in order
        for i in range(replicas):
            p = pods.get(i)
            if p is None:
                await self._create(sts, i, revision)
                if ordered:
                    return
                continue
            if ordered and not _running_ready(p):
                return  # wait for this one before touching the next
        # 3. scale down from the highest ordinal
        extra = sorted((i for i in pods if i >= replicas), reverse=True)
        if extra:
            if ordered and any(_terminating(p) for p in pods.values()):
                return
            for i in extra[:1] if ordered else extra:
                if not _terminating(pods[i]):
                    await self._delete(sts, pods[i])
            return
        # 4. rolling update: the highest old pod at or above the partition, once all are Ready
        strategy = (sts.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        if not all(_running_ready(pods[i]) for i in range(replicas) if i in pods):
            return
        partition = int((strategy.get("rollingUpdate") or {}).get("partition", 0))
        for i in range(replicas - 1, partition - 1, -1):
            p = pods.get(i)
            if p is not None and (p["metadata"].get("labels") or {}).get(REVISION_LABEL) != revision:
                await self._delete(sts, p)
                return

    async def _create(self, sts: dict, i: int, revision: str) -> None:
        spec = sts.get("spec") or {}
        ns = sts["metadata"].get("namespace", "default")
        name = f"{sts['metadata']['name']}-{i}"
        tmpl = copy.deepcopy(spec.get("template") or {})
        md = tmpl.get("metadata") or {}
        pod_spec = tmpl.get("spec") or {}
        volumes = [v for v in pod_spec.get("volumes") or []
                   if v.get("name") not in {c["metadata"]["name"] for c in spec.get("volumeClaimTemplates") or []}]
        for claim in spec.get("volumeClaimTemplates") or []:
            await self._ensure_claim(sts, claim, name)
            volumes.append({"name": claim["metadata"]["name"],
                            "persistentVolumeClaim": {"claimName": claim_name(claim, name)}})
        if volumes:
            pod_spec["volumes"] = volumes
        pod_spec["hostname"] = name
        if spec.get("serviceName"):
            pod_spec["subdomain"] = spec["serviceName"]
        labels = {**(md.get("labels") or {}), REVISION_LABEL: revision, POD_NAME_LABEL: name,
                  POD_INDEX_LABEL: str(i)}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": ns, "labels": labels,
                            "annotations": dict(md.get("annotations") or {}), "ownerReferences": [owner_ref(sts)]},
               "spec": pod_spec}
        try:
            await self.client.create("pods", pod, namespace=ns)
        except ApiError as exc:
            if exc.code == 409:
                return  # the old pod of that name is still going away: the next sync makes it
            raise
        self.recorder.event(sts, "Normal", "SuccessfulCreate",
                            f"create Pod {name} in StatefulSet {sts['metadata']['name']} successful")

    async def _ensure_claim(self, sts: dict, template: dict, pod_name: str) -> None:
        ns = sts["metadata"].get("namespace", "default")
        cname = claim_name(template, pod_name)
        if self.claims.get(cname, ns) is not None:
            return
        sel_labels = ((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        tmd = template.get("metadata") or {}
        claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                 "metadata": {"name": cname, "namespace": ns, "labels": {**(tmd.get("labels") or {}), **sel_labels},
                              "annotations": dict(tmd.get("annotations") or {})},
                 "spec": copy.deepcopy(template.get("spec") or {})}
        try:
            await self.client.create("persistentvolumeclaims", claim, namespace=ns)
        except ApiError as exc:
            if exc.code != 409:
                raise
            return
        self.recorder.event(sts, "Normal", "SuccessfulCreate",
                            f"create Claim {cname} Pod {pod_name} in StatefulSet {sts['metadata']['name']} success")

    async def _delete(self, sts: dict, pod: dict) -> None:
        md = pod["metadata"]
        try:
            await self.client.delete("pods", md["name"], md.get("namespace"))
        except ApiError as exc:
            if not exc.not_found:
                raise
            return
        self.recorder.event(sts, "Normal", "SuccessfulDelete",
                            f"delete Pod {md['name']} in StatefulSet {sts['metadata']['name']} successful")

    async def _update_status(self, sts: dict, pods: dict[int, dict], replicas: int, revision: str) -> None:
        live = [p for p in pods.values() if not _terminating(p)]
        updated = [p for p in live if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == revision]
        old = sts.get("status") or {}
        current_rev = old.get("currentRevision") or revision
        if len(updated) == replicas == len(live):
            current_rev = revision
        ready = sum(1 for p in live if _running_ready(p))
        status = {
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": len(live),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "currentReplicas": sum(1 for p in live
                                   if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == current_rev),
            "updatedReplicas": len(updated),
            "currentRevision": current_rev,
            "updateRevision": revision,
        }
        if all(old.get(k, 0) == v for k, v in status.items()):
            return
        ns, name = split_key(key_of(sts))
        await self.client.patch("statefulsets", name, {"status": status}, ns, sub="status")
