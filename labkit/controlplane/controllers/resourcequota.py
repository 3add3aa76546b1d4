"""The resource quota controller: each ResourceQuota's ``status.hard`` and ``status.used``.

Admission charges a new object to a quota before storing it; only this controller gives usage
back, by counting what really exists in the namespace: after a delete, after a pod finished, and
after a create that was charged but then failed. It recounts a quota when the quota changes and
when a pod or another counted object in its namespace changes, and every ``resync`` seconds (for
kinds it does not watch), as kube-controller-manager's resourcequota controller does.

Its write carries the quota's resourceVersion, so a charge made after the count fails it (409) and
it counts again. And it lowers ``used`` only once the quota has gone unchanged for ``quiet``
seconds: a create is charged a moment before it is stored, and a count taken in that moment
would give back what the create holds (labkit's rule; Kubernetes narrows the same window by
recounting only after deletes and on a slow resync).
"""

from __future__ import annotations

import asyncio

from labkit.client.informer import key_of
from labkit.client.resources import RESOURCES, Resource
from labkit.controlplane.controllers.base import Controller, split_key
from labkit.controlplane.quota import amounts, scopes, usage

WATCHED = ("pods", "services", "configmaps", "persistentvolumeclaims")
POD_NAMES = ("pods", "count/pods", "cpu", "memory", "ephemeral-storage")


def _kind_of(name: str) -> tuple[str, str] | None:
    """Which (plural, group) a quota resource name counts: ``limits.cpu`` -> pods."""
    if name in POD_NAMES or name.startswith(("requests.", "limits.")) and name != "requests.storage":
        return ("pods", "")
    if name == "requests.storage" or name.endswith(".storageclass.storage.k8s.io/requests.storage") \
            or name.endswith(".storageclass.storage.k8s.io/persistentvolumeclaims"):
        return ("persistentvolumeclaims", "")
    if name in ("services.nodeports", "services.loadbalancers"):
        return ("services", "")
    if name in usage.SHORT_COUNTS:
        return (name, "")
    if name.startswith("count/"):
        plural, _, group = name[len("count/"):].partition(".")
        return (plural, group)
    return None


class ResourceQuotaController(Controller):
    name = "resourcequota-controller"

    def __init__(self, *a, resync: float = 30.0, quiet: float = 1.0, **kw):
        super().__init__(*a, **kw)
        self.resync = resync
        self.quiet = quiet
        self._quiet: dict[str, tuple[str | None, float]] = {}  # quota key -> (resourceVersion, first seen)
        self.quotas = self.informers.get("resourcequotas")
        self.quotas.add_handler(lambda q: self.queue.add(key_of(q)), lambda o, n: self.queue.add(key_of(n)))
        self.watched = {plural: self.informers.get(plural) for plural in WATCHED}
        for inf in self.watched.values():
            inf.add_handler(self._changed, lambda o, n: self._changed(n), self._changed)

    def _changed(self, obj: dict) -> None:
        ns = obj["metadata"].get("namespace")
        for q in self.quotas.cache.values():
            if q["metadata"].get("namespace") == ns:
                self.queue.add(key_of(q))

    async def run(self) -> None:
        await asyncio.gather(super().run(), self._resync())

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.resync)
            for q in list(self.quotas.cache.values()):
                self.queue.add(key_of(q))

    async def _objects(self, plural: str, group: str, ns: str) -> list[dict]:
        if not group and plural in self.watched:
            return [o for o in self.watched[plural].cache.values() if o["metadata"].get("namespace") == ns]
        res = RESOURCES.get(plural)
        if res is None or res.group != group:
            res = Resource(group, "v1", plural, "")
        return (await self.client.list(res, ns)).get("items") or []

    async def sync(self, key: str) -> None:
        quota = self.quotas.cache.get(key)
        if quota is None:
            return
        ns, _ = split_key(key)
        hard = amounts.parse_all((quota.get("spec") or {}).get("hard"))
        used = {name: amounts.Decimal(0) for name in hard}
        kinds = {k for k in (_kind_of(n) for n in hard) if k is not None}
        for plural, group in sorted(kinds):
            for obj in await self._objects(plural, group, ns or "default"):
                if obj["metadata"].get("deletionTimestamp") and plural == "pods":
                    continue
                if not scopes.selects(quota, plural, group, obj):
                    continue
                for name, v in usage.usage(plural, group, obj).items():
                    if name in used:
                        used[name] += v
        status = {"hard": amounts.fmt_all(hard), "used": amounts.fmt_all(used)}
        if (quota.get("status") or {}) == status:
            self._quiet.pop(key, None)
            return
        charged = amounts.parse_all((quota.get("status") or {}).get("used"))
        if any(used[r] < charged.get(r, used[r]) for r in used) and not self._quiet_long_enough(key, quota):
            return  # giving back: only once no create can be between its charge and its store write
        self._quiet.pop(key, None)
        # the quota's resourceVersion goes with it: a charge made since this count makes the write fail (409)
        await self.client.update_status("resourcequotas", {**quota, "status": status})

    def _quiet_long_enough(self, key: str, quota: dict) -> bool:
        """Admission charges a quota a moment before the object is stored, so a count taken in that
        moment misses it. Usage is lowered only after the quota went unchanged for ``quiet`` seconds."""
        rv = quota["metadata"].get("resourceVersion")
        now = asyncio.get_running_loop().time()
        seen = self._quiet.get(key)
        if seen is None or seen[0] != rv:
            self._quiet[key] = (rv, now)
            self.queue.add_after(key, self.quiet)
            return False
        if now - seen[1] < self.quiet:
            self.queue.add_after(key, self.quiet - (now - seen[1]))
            return False
        return True
