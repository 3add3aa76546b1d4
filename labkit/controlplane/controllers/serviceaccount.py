"""The ServiceAccounts controller: every namespace has a ServiceAccount named ``default``.

kube-controller-manager makes it as soon as a namespace appears and again if it is deleted, so a
pod that names no account runs as ``system:serviceaccount:NS:default`` and
``kubectl create token default`` works in any namespace.
"""

from __future__ import annotations

from labkit.client.rest import ApiError
from labkit.controlplane.controllers.base import Controller

DEFAULT = "default"


class ServiceAccountsController(Controller):
    name = "serviceaccount-controller"
    workers = 1

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.namespaces = self.informers.get("namespaces")
        self.accounts = self.informers.get("serviceaccounts")
        self.namespaces.add_handler(lambda ns: self.queue.add(ns["metadata"]["name"]),
                                    lambda o, ns: self.queue.add(ns["metadata"]["name"]))
        self.accounts.add_handler(None, None, self._deleted)

    def _deleted(self, sa: dict) -> None:
        if sa["metadata"].get("name") == DEFAULT:
            self.queue.add(sa["metadata"].get("namespace", "default"))

    async def sync(self, key: str) -> None:
        ns = self.namespaces.cache.get(key)
        if ns is None or (ns.get("status") or {}).get("phase") == "Terminating" \
                or ns["metadata"].get("deletionTimestamp"):
            return
        if f"{key}/{DEFAULT}" in self.accounts.cache:
            return
        try:
            await self.client.create("serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount",
                                                         "metadata": {"name": DEFAULT}}, key)
        except ApiError as exc:
            if exc.code != 409:  # 409: it is there already (the cache had not seen it yet)
                raise
