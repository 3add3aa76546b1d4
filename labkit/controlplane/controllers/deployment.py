"""Deployment controller: a Deployment owns ReplicaSets, one per pod template it has had.

Each sync finds the ReplicaSet whose template equals the Deployment's (creating it if needed:
that is a new *revision*), then moves replicas from the old ReplicaSets to the new one within
maxSurge/maxUnavailable, deletes old empty ReplicaSets beyond revisionHistoryLimit, and writes
the status fields ``kubectl rollout status`` reads. ``kubectl rollout undo`` copies an old
ReplicaSet's template back into the Deployment; the controller then finds that ReplicaSet again
and gives it the next revision number.
"""

from __future__ import annotations

import copy
import time

from labkit.client.informer import key_of
from labkit.client.rest import ApiError
from labkit.client.selectors import workload_selects
from labkit.client.timestamps import parse_time
from labkit.controlplane.controllers import rollout
from labkit.controlplane.controllers.base import Controller, controller_of, owner_ref, split_key

REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"


def revision_of(obj: dict) -> int:
    try:
        return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class DeploymentController(Controller):
    name = "deployment-controller"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.deploys = self.informers.get("deployments")
        self.rs = self.informers.get("replicasets")
        self.deploys.add_handler(lambda o: self.queue.add(key_of(o)), lambda o, n: self.queue.add(key_of(n)))
        self.rs.add_handler(self._rs_changed, lambda o, n: self._rs_changed(n), self._rs_changed)

    def _rs_changed(self, rs: dict) -> None:
        ref = controller_of(rs)
        if ref and ref.get("kind") == "Deployment":
            self.queue.add(f"{rs['metadata'].get('namespace', 'default')}/{ref['name']}")

    def owned(self, d: dict) -> list[dict]:
        uid, ns = d["metadata"]["uid"], d["metadata"].get("namespace", "default")
        return [r for r in self.rs.cache.values()
                if r["metadata"].get("namespace") == ns and (controller_of(r) or {}).get("uid") == uid]

    async def sync(self, key: str) -> None:
        d = self.deploys.cache.get(key)
        if d is None or d["metadata"].get("deletionTimestamp"):
            return
        spec = d.get("spec") or {}
        await self._adopt_orphans(d)
        owned = self.owned(d)
        new = next((r for r in owned if rollout.same_template(r["spec"].get("template"), spec.get("template"))), None)
        olds = [r for r in owned if r is not new]
        max_rev = max([revision_of(r) for r in olds] + [0])
        if spec.get("paused"):
            await self._update_status(d, new, olds)
            return
        if new is None:
            new = await self._create_rs(d, max_rev + 1, owned)
        elif revision_of(new) <= max_rev:  # a rollback brought an old template back
            new = await self._annotate_rs(new, {REVISION: str(max_rev + 1)})
        await self._sync_deploy_revision(d, new)
        replicas = int(spec.get("replicas", 1))
        strategy = (spec.get("strategy") or {}).get("type", "RollingUpdate")
        if strategy == "Recreate":
            await self._recreate(d, new, olds, replicas)
        else:
            await self._rolling(d, new, olds, replicas)
        await self._cleanup(d, olds)
        await self._update_status(d, self.rs.cache.get(key_of(new)) or new, olds)

    async def _adopt_orphans(self, d: dict) -> None:
        """ReplicaSets that match the selector and have no controller (e.g. after an orphan delete) come back."""
        ns = d["metadata"].get("namespace", "default")
        for r in list(self.rs.cache.values()):
            md = r["metadata"]
            if md.get("namespace") != ns or controller_of(r) or md.get("deletionTimestamp") \
                    or not workload_selects((d.get("spec") or {}).get("selector"), md.get("labels")):
                continue
            refs = [*(md.get("ownerReferences") or []), owner_ref(d)]
            try:
                await self.client.patch("replicasets", md["name"], {"metadata": {
                    "ownerReferences": refs, "resourceVersion": md["resourceVersion"]}}, ns)
                md["ownerReferences"] = refs
            except ApiError as exc:
                if exc.code not in (404, 409):
                    raise

    # ------------------------------------------------------------------ steps
    async def _create_rs(self, d: dict, revision: int, owned: list[dict]) -> dict:
        spec = d["spec"]
        tmpl = copy.deepcopy(spec["template"])
        collision = int((d.get("status") or {}).get("collisionCount", 0))
        h = rollout.template_hash(tmpl, collision)
        tmpl.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = h
        sel = copy.deepcopy(spec.get("selector") or {})
        sel.setdefault("matchLabels", {})["pod-template-hash"] = h
        ns = d["metadata"].get("namespace", "default")
        surge, _ = rollout.surge_and_unavailable(d)
        replicas = int(spec.get("replicas", 1))
        start = 0 if owned else replicas  # the very first ReplicaSet starts at full size
        rs = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {
                "name": f"{d['metadata']['name']}-{h}", "namespace": ns,
                "labels": {**(tmpl["metadata"].get("labels") or {})},
                "annotations": {REVISION: str(revision), DESIRED: str(replicas), MAX_REPLICAS: str(replicas + surge)},
                "ownerReferences": [owner_ref(d)],
            },
            "spec": {"replicas": start, "selector": sel, "template": tmpl,
                     "minReadySeconds": spec.get("minReadySeconds", 0)},
        }
        created = await self.client.create("replicasets", rs, namespace=ns)
        if start:
            self.recorder.event(d, "Normal", "ScalingReplicaSet",
                                f"Scaled up replica set {rs['metadata']['name']} to {start}")
        return created

    async def _annotate_rs(self, rs: dict, ann: dict) -> dict:
        md = rs["metadata"]
        return await self.client.patch("replicasets", md["name"], {"metadata": {"annotations": ann}},
                                       md.get("namespace"))

    async def _sync_deploy_revision(self, d: dict, new: dict) -> None:
        rev = str(revision_of(new))
        if (d["metadata"].get("annotations") or {}).get(REVISION) != rev:
            md = d["metadata"]
            await self.client.patch("deployments", md["name"], {"metadata": {"annotations": {REVISION: rev}}},
                                    md.get("namespace"))

    async def _scale(self, d: dict, rs: dict, n: int) -> None:
        cur = int(rs["spec"].get("replicas", 0))
        if cur == n:
            return
        md = rs["metadata"]
        surge, _ = rollout.surge_and_unavailable(d)
        replicas = int(d["spec"].get("replicas", 1))
        await self.client.patch("replicasets", md["name"], {
            "metadata": {"annotations": {DESIRED: str(replicas), MAX_REPLICAS: str(replicas + surge)}},
            "spec": {"replicas": n}}, md.get("namespace"))
        rs["spec"]["replicas"] = n
        verb = "up" if n > cur else "down"
        extra = f" from {cur}" if verb == "down" else ""
        self.recorder.event(d, "Normal", "ScalingReplicaSet", f"Scaled {verb} replica set {md['name']} to {n}{extra}")

    async def _rolling(self, d: dict, new: dict, olds: list[dict], replicas: int) -> None:
        surge, unavail = rollout.surge_and_unavailable(d)
        active_olds = [r for r in olds if int(r["spec"].get("replicas", 0)) > 0]
        if not active_olds:
            await self._scale(d, new, replicas)  # plain scaling, no rollout in progress
            return
        total = sum(int(r["spec"].get("replicas", 0)) for r in [new, *olds])
        target = rollout.new_rs_target(replicas, surge, total, int(new["spec"].get("replicas", 0)))
        await self._scale(d, new, target)
        # kube-controller-manager's rule: count pods by spec, minus the new ones not yet available,
        # so a stale "available" in an old ReplicaSet's status can never let us go below the minimum
        spec_total = sum(int(r["spec"].get("replicas", 0)) for r in [new, *olds])
        new_unavailable = max(0, int(new["spec"].get("replicas", 0))
                              - int((new.get("status") or {}).get("availableReplicas", 0)))
        budget = spec_total - (replicas - unavail) - new_unavailable
        if budget <= 0:
            return
        active_olds.sort(key=revision_of)
        drops = rollout.unhealthy_scale_down(
            [(int(r["spec"].get("replicas", 0)), int((r.get("status") or {}).get("availableReplicas", 0)))
             for r in active_olds], budget)
        for r, drop in zip(active_olds, drops, strict=True):
            if drop:
                await self._scale(d, r, int(r["spec"].get("replicas", 0)) - drop)
        budget -= sum(drops)
        available = sum(int((r.get("status") or {}).get("availableReplicas", 0)) for r in [new, *olds])
        budget = min(budget, rollout.old_scale_down_budget(replicas, unavail, available))
        for r in active_olds:
            if budget <= 0:
                break
            cur = int(r["spec"].get("replicas", 0))
            drop = min(cur, budget)
            budget -= drop
            await self._scale(d, r, cur - drop)

    async def _recreate(self, d: dict, new: dict, olds: list[dict], replicas: int) -> None:
        running = False
        for r in olds:
            if int(r["spec"].get("replicas", 0)) > 0:
                await self._scale(d, r, 0)
            if int((r.get("status") or {}).get("replicas", 0)) > 0:
                running = True
        if not running:
            await self._scale(d, new, replicas)

    async def _cleanup(self, d: dict, olds: list[dict]) -> None:
        limit = int((d.get("spec") or {}).get("revisionHistoryLimit", 10))
        idle = sorted([r for r in olds if int(r["spec"].get("replicas", 0)) == 0
                       and int((r.get("status") or {}).get("replicas", 0)) == 0
                       and not r["metadata"].get("deletionTimestamp")], key=revision_of)
        for r in idle[: max(0, len(idle) - limit)]:
            md = r["metadata"]
            await self.client.delete("replicasets", md["name"], md.get("namespace"), propagation="Background")

    async def _update_status(self, d: dict, new: dict | None, olds: list[dict]) -> None:
        spec = d.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        _, unavail = rollout.surge_and_unavailable(d)
        all_rs = [r for r in [new, *olds] if r]
        st = lambda r, f: int((r.get("status") or {}).get(f, 0))  # noqa: E731
        total = sum(st(r, "replicas") for r in all_rs)
        available = sum(st(r, "availableReplicas") for r in all_rs)
        updated = st(new, "replicas") if new else 0
        new_available = st(new, "availableReplicas") if new else 0
        old = d.get("status") or {}
        conds = {c["type"]: c for c in old.get("conditions") or []}
        avail_ok = available >= replicas - unavail
        complete = new is not None and updated == replicas and new_available == replicas and total == replicas
        self._set_cond(conds, "Available", avail_ok,
                       "MinimumReplicasAvailable" if avail_ok else "MinimumReplicasUnavailable",
                       "Deployment has minimum availability." if avail_ok
                       else "Deployment does not have minimum availability.")
        name = new["metadata"]["name"] if new else ""
        ready = sum(st(r, "readyReplicas") for r in all_rs)
        gen = d["metadata"].get("generation", 1)
        progressed = old.get("observedGeneration") != gen or any(
            old.get(k, 0) != v for k, v in (("replicas", total), ("updatedReplicas", updated),
                                            ("availableReplicas", available), ("readyReplicas", ready)))
        deadline = spec.get("progressDeadlineSeconds", 600)
        if complete:
            self._set_cond(conds, "Progressing", True, "NewReplicaSetAvailable",
                           f'ReplicaSet "{name}" has successfully progressed.')
        elif progressed or spec.get("paused"):
            self._set_cond(conds, "Progressing", True, "ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.',
                           touch=True)
            if deadline is not None and not spec.get("paused"):
                self.queue.add_after(key_of(d), float(deadline) + 0.5)  # look again when the deadline passes
        else:
            cond = conds.get("Progressing") or {}
            if deadline is not None and cond.get("reason") == "ReplicaSetUpdated" and \
                    time.time() - (parse_time(cond.get("lastUpdateTime")) or time.time()) > float(deadline):
                self._set_cond(conds, "Progressing", False, "ProgressDeadlineExceeded",
                               f'ReplicaSet "{name}" has timed out progressing.')
                self.recorder.event(d, "Warning", "ProgressDeadlineExceeded",
                                    f'Deployment "{d["metadata"]["name"]}" has timed out progressing.')
            elif deadline is not None and cond.get("reason") == "ReplicaSetUpdated":
                self.queue.add_after(key_of(d), 1.0)
        status = {
            "observedGeneration": d["metadata"].get("generation", 1),
            "replicas": total, "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available, "unavailableReplicas": max(0, total - available),
            "conditions": list(conds.values()),
        }
        if "collisionCount" in old:
            status["collisionCount"] = old["collisionCount"]
        if all(old.get(k) == v for k, v in status.items() if k != "conditions") and _same_conds(
                old.get("conditions") or [], status["conditions"]):
            return
        ns, name = split_key(key_of(d))
        await self.client.patch("deployments", name, {"status": status}, ns, sub="status")

    @staticmethod
    def _set_cond(conds: dict, typ: str, ok: bool, reason: str, message: str, touch: bool = False) -> None:
        s = "True" if ok else "False"
        old = conds.get(typ)
        if old and old.get("status") == s and old.get("reason") == reason and not touch:
            return
        t = now()
        conds[typ] = {"type": typ, "status": s, "reason": reason, "message": message,
                      "lastUpdateTime": t,
                      "lastTransitionTime": t if not old or old.get("status") != s else old.get("lastTransitionTime", t)}


def _same_conds(a: list[dict], b: list[dict]) -> bool:
    pick = lambda cs: sorted((c.get("type"), c.get("status"), c.get("reason")) for c in cs)  # noqa: E731
    return pick(a) == pick(b)
