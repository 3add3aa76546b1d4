"""ReplicaSet controller: keep ``spec.replicas`` pods matching the template alive.

Counts the active pods it owns (ownerReference with controller=true), creates the missing ones
from the template, deletes the extra ones (the least useful first: unscheduled, then pending,
then not ready), and writes the counts into ``status``. *Expectations* remember the creates and
deletes it already asked for, so a sync that runs before the watch has shown them does not
create the same pods twice.
"""

from __future__ import annotations

import copy
import random
import time

from labkit.client.informer import key_of
from labkit.client.pods import is_pod_active, is_pod_ready
from labkit.client.rest import ApiError
from labkit.client.selectors import workload_selects
from labkit.controlplane.controllers.base import Controller, OwnsPods, controller_of, owner_ref, split_key

_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
EXPECTATION_TIMEOUT_S = 30.0
BURST = 100


def random_suffix(n: int = 5) -> str:
    return "".join(random.choice(_ALPHABET) for _ in range(n))


class Expectations:
    def __init__(self) -> None:
        self._e: dict[str, tuple[int, int, float]] = {}

    def expect(self, key: str, adds: int = 0, dels: int = 0) -> None:
        a, d, _ = self._e.get(key, (0, 0, 0.0))
        self._e[key] = (a + adds, d + dels, time.monotonic())

    def observed(self, key: str, adds: int = 0, dels: int = 0) -> None:
        if key in self._e:
            a, d, t = self._e[key]
            self._e[key] = (max(0, a - adds), max(0, d - dels), t)

    def satisfied(self, key: str) -> bool:
        a, d, t = self._e.get(key, (0, 0, 0.0))
        return (a <= 0 and d <= 0) or time.monotonic() - t > EXPECTATION_TIMEOUT_S

    def clear(self, key: str) -> None:
        self._e.pop(key, None)


def deletion_rank(pod: dict) -> tuple:
    """Smaller ranks are deleted first (as kube-controller-manager's ActivePods ordering)."""
    status = pod.get("status") or {}
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(status.get("phase", "Pending"), 0)
    restarts = sum(c.get("restartCount", 0) for c in status.get("containerStatuses") or [])
    return (bool((pod.get("spec") or {}).get("nodeName")), phase_rank, is_pod_ready(pod), -restarts,
            # newer pods go first: negate the creation time string ordering by sorting reversed later
            pod["metadata"].get("creationTimestamp", ""))


class ReplicaSetController(OwnsPods, Controller):
    name = "replicaset-controller"
    OWNER_KIND = "ReplicaSet"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.rs = self.informers.get("replicasets")
        self.pods = self.informers.get("pods")
        self.expectations = Expectations()
        self.rs.add_handler(lambda o: self.queue.add(key_of(o)), lambda o, n: self.queue.add(key_of(n)),
                            self._rs_deleted)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    def _rs_deleted(self, rs: dict) -> None:
        self.expectations.clear(key_of(rs))

    def _pod_updated(self, old: dict, pod: dict) -> None:
        k = self._owner_key(pod)
        if k:
            if pod["metadata"].get("deletionTimestamp") and not old["metadata"].get("deletionTimestamp"):
                self.expectations.observed(k, dels=1)
            self.queue.add(k)

    def _pod_deleted(self, pod: dict) -> None:
        k = self._owner_key(pod)
        if k:
            if not pod["metadata"].get("deletionTimestamp"):
                self.expectations.observed(k, dels=1)
            self.queue.add(k)

    def owned_pods(self, rs: dict) -> list[dict]:
        uid = rs["metadata"]["uid"]
        ns = rs["metadata"].get("namespace", "default")
        return [p for p in self.pods.cache.values()
                if p["metadata"].get("namespace") == ns and (controller_of(p) or {}).get("uid") == uid]

    async def sync(self, key: str) -> None:
        rs = self.rs.cache.get(key)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return
        ns, name = split_key(key)
        await self._adopt_orphans(rs)
        pods = self.owned_pods(rs)
        active = [p for p in pods if is_pod_active(p)]
        want = int((rs.get("spec") or {}).get("replicas", 1))
        if self.expectations.satisfied(key):
            diff = want - len(active)
            if diff > 0:
                n = min(diff, BURST)
                self.expectations.expect(key, adds=n)
                for _ in range(n):
                    await self._create_pod(rs)
            elif diff < 0:
                victims = sorted(active, key=deletion_rank)
                victims = _newest_first_within_rank(victims)[: -diff]
                self.expectations.expect(key, dels=len(victims))
                for p in victims:
                    await self._delete_pod(rs, p)
        await self._update_status(rs, pods)

    async def _adopt_orphans(self, rs: dict) -> None:
        """Pods that match the selector and have no controller become this ReplicaSet's (as in Kubernetes)."""
        ns = rs["metadata"].get("namespace", "default")
        sel = (rs.get("spec") or {}).get("selector")
        for p in list(self.pods.cache.values()):
            md = p["metadata"]
            if md.get("namespace") != ns or controller_of(p) or md.get("deletionTimestamp") \
                    or not is_pod_active(p) or not workload_selects(sel, md.get("labels")):
                continue
            refs = [*(md.get("ownerReferences") or []), owner_ref(rs)]
            try:
                await self.client.patch("pods", md["name"], {"metadata": {"ownerReferences": refs,
                                                                          "resourceVersion": md["resourceVersion"]}},
                                        ns)
                md["ownerReferences"] = refs
            except ApiError as exc:
                if exc.code not in (404, 409):
                    raise

    async def _create_pod(self, rs: dict) -> None:
        tmpl = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
        md = tmpl.get("metadata") or {}
        ns = rs["metadata"].get("namespace", "default")
        name = f"{rs['metadata']['name']}-{random_suffix()}"
        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": md.get("labels") or {},
                         "annotations": md.get("annotations") or {}, "ownerReferences": [owner_ref(rs)]},
            "spec": tmpl.get("spec") or {},
        }
        try:
            await self.client.create("pods", pod, namespace=ns)
        except Exception as exc:
            self.expectations.observed(key_of(rs), adds=1)
            if isinstance(exc, ApiError) and exc.code in (403, 422):  # refused at admission: say why, as Kubernetes does
                self.recorder.event(rs, "Warning", "FailedCreate", f"Error creating: {exc.message}")
            raise
        self.recorder.event(rs, "Normal", "SuccessfulCreate", f"Created pod: {name}")

    async def _delete_pod(self, rs: dict, pod: dict) -> None:
        md = pod["metadata"]
        try:
            await self.client.delete("pods", md["name"], md.get("namespace"))
        except Exception:
            self.expectations.observed(key_of(rs), dels=1)
            raise
        self.recorder.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {md['name']}")

    async def _update_status(self, rs: dict, pods: list[dict]) -> None:
        active = [p for p in pods if is_pod_active(p)]
        labels = ((rs.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}
        ready = sum(1 for p in active if is_pod_ready(p))
        status = {
            "replicas": len(active),
            "fullyLabeledReplicas": sum(1 for p in active
                                        if all((p["metadata"].get("labels") or {}).get(k) == v
                                               for k, v in labels.items())),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        old = rs.get("status") or {}
        if all(old.get(k, 0) == v for k, v in status.items()):
            return
        md = rs["metadata"]
        await self.client.patch("replicasets", md["name"], {"status": status}, md.get("namespace"), sub="status")


def _newest_first_within_rank(pods: list[dict]) -> list[dict]:
    """Stable sort by rank, and within an equal rank the newest pod first."""
    return sorted(pods, key=lambda p: (deletion_rank(p)[:-1], _neg(p["metadata"].get("creationTimestamp", ""))))


def _neg(ts: str) -> tuple:
    return tuple(-ord(c) for c in ts)
