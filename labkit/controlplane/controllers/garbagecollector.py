"""Garbage collector: delete objects whose owners are gone; carry out foreground and orphan deletes.

Objects point at their owners with ``metadata.ownerReferences`` (a Pod at its ReplicaSet, a
ReplicaSet at its Deployment). The collector keeps the graph of those references:

* **background** (the default): the owner goes at once; its dependents, now owner-less, are
  deleted afterwards by this controller.
* **foreground**: the apiserver gives the owner the ``foregroundDeletion`` finalizer; the
  collector deletes the dependents first and removes the finalizer when none are left.
* **orphan**: the ``orphan`` finalizer; the collector removes the owner reference from each
  dependent (they live on) and then the finalizer.
"""

from __future__ import annotations

from labkit.client.informer import key_of
from labkit.client.resources import resource
from labkit.client.rest import ApiError
from labkit.controlplane.controllers.base import Controller

WATCHED = ("deployments", "replicasets", "pods")
WATCHED += ("jobs", "cronjobs", "daemonsets", "statefulsets")  # owners (and dependents) of the workload kinds


class GarbageCollector(Controller):
    name = "garbage-collector"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.by_uid: dict[str, tuple[str, dict]] = {}
        self.dependents: dict[str, set[tuple[str, str]]] = {}  # owner uid -> {(plural, key)}
        for plural in WATCHED:
            inf = self.informers.get(plural)
            inf.add_handler(lambda o, p=plural: self._seen(p, o), lambda old, o, p=plural: self._seen(p, o, old),
                            lambda o, p=plural: self._gone(p, o))

    def _seen(self, plural: str, obj: dict, old: dict | None = None) -> None:
        md = obj["metadata"]
        self.by_uid[md["uid"]] = (plural, obj)
        k = (plural, key_of(obj))
        if old is not None:
            for ref in old["metadata"].get("ownerReferences") or []:
                self.dependents.get(ref.get("uid"), set()).discard(k)
        for ref in md.get("ownerReferences") or []:
            self.dependents.setdefault(ref.get("uid"), set()).add(k)
            owner = self.by_uid.get(ref.get("uid"))
            if owner and owner[1]["metadata"].get("deletionTimestamp"):
                self.queue.add(f"{owner[0]}|{key_of(owner[1])}")
        if md.get("ownerReferences") or md.get("deletionTimestamp"):
            self.queue.add(f"{plural}|{key_of(obj)}")

    def _gone(self, plural: str, obj: dict) -> None:
        md = obj["metadata"]
        self.by_uid.pop(md.get("uid"), None)
        for ref in md.get("ownerReferences") or []:
            self.dependents.get(ref.get("uid"), set()).discard((plural, key_of(obj)))
            owner = self.by_uid.get(ref.get("uid"))
            if owner:
                self.queue.add(f"{owner[0]}|{key_of(owner[1])}")
        for dep in self.dependents.pop(md.get("uid"), set()):
            self.queue.add(f"{dep[0]}|{dep[1]}")

    async def sync(self, qkey: str) -> None:
        plural, key = qkey.split("|", 1)
        obj = self.informers.get(plural).cache.get(key)
        if obj is None:
            return
        md = obj["metadata"]
        fins = md.get("finalizers") or []
        if md.get("deletionTimestamp") and "orphan" in fins:
            await self._orphan(plural, obj)
            return
        if md.get("deletionTimestamp") and "foregroundDeletion" in fins:
            await self._foreground(plural, obj)
            return
        refs = md.get("ownerReferences") or []
        if refs and not md.get("deletionTimestamp"):
            for ref in refs:
                if await self._owner_exists(ref, md.get("namespace")):
                    return
            await self.client.delete(plural, md["name"], md.get("namespace"), propagation="Background",
                                     preconditions_uid=md["uid"])
            self.recorder.event(obj, "Normal", "GarbageCollected",
                                f"Deleted {obj.get('kind', plural)} {md['name']}: its owner is gone")

    async def _owner_exists(self, ref: dict, ns: str | None) -> bool:
        if ref.get("uid") in self.by_uid:
            return True
        try:
            res = resource(ref.get("kind", ""))
        except KeyError:
            return True  # a kind we cannot look up: keep the dependent (never delete on doubt)
        try:
            owner = await self.client.get(res, ref["name"], ns if res.namespaced else None)
        except ApiError as exc:
            if exc.not_found:
                return False
            raise
        return owner["metadata"].get("uid") == ref.get("uid")

    def _deps(self, obj: dict) -> list[tuple[str, dict]]:
        out = []
        for plural, key in list(self.dependents.get(obj["metadata"]["uid"], set())):
            dep = self.informers.get(plural).cache.get(key)
            if dep is not None:
                out.append((plural, dep))
        return out

    async def _remove_finalizer(self, plural: str, obj: dict, fin: str) -> None:
        md = obj["metadata"]
        rest = [f for f in md.get("finalizers") or [] if f != fin]
        await self.client.patch(plural, md["name"], {"metadata": {"finalizers": rest or None,
                                                                  "resourceVersion": md["resourceVersion"]}},
                                md.get("namespace"))

    async def _orphan(self, plural: str, obj: dict) -> None:
        uid = obj["metadata"]["uid"]
        for dplural, dep in self._deps(obj):
            dmd = dep["metadata"]
            refs = [r for r in dmd.get("ownerReferences") or [] if r.get("uid") != uid]
            await self.client.patch(dplural, dmd["name"], {"metadata": {"ownerReferences": refs or None}},
                                    dmd.get("namespace"))
        await self._remove_finalizer(plural, obj, "orphan")

    async def _foreground(self, plural: str, obj: dict) -> None:
        deps = self._deps(obj)
        for dplural, dep in deps:
            dmd = dep["metadata"]
            if not dmd.get("deletionTimestamp"):
                try:
                    await self.client.delete(dplural, dmd["name"], dmd.get("namespace"), propagation="Foreground")
                except ApiError as exc:
                    if not exc.not_found:
                        raise
        if deps:
            self.queue.add_after(f"{plural}|{key_of(obj)}", 1.0)  # wait until they are really gone
            return
        await self._remove_finalizer(plural, obj, "foregroundDeletion")
