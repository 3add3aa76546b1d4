"""Endpoints controller: for each Service with a selector, the IPs of its ready pods.

kube-proxy (``labkit.node``'s proxy) reads the Endpoints object named after the Service and
programs the node's forwarding rules from it; ready pods go into ``addresses``, the others into
``notReadyAddresses``. The same addresses are written as one EndpointSlice per Service (named
after it, label ``kubernetes.io/service-name``), the form newer clients read (kubectl 1.33's
``describe service`` and ``describe ingress``); Kubernetes' EndpointSlice controller would shard
them into slices of 100 with generated names.
"""

from __future__ import annotations

from labkit.client.informer import key_of
from labkit.client.pods import is_pod_ready
from labkit.client.rest import ApiError
from labkit.client.selectors import service_selects
from labkit.controlplane.controllers.base import Controller, split_key


class EndpointsController(Controller):
    name = "endpoint-controller"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.services = self.informers.get("services")
        self.pods = self.informers.get("pods")
        self.endpoints = self.informers.get("endpoints")
        self.services.add_handler(lambda s: self.queue.add(key_of(s)), lambda o, n: self.queue.add(key_of(n)),
                                  lambda s: self.queue.add(key_of(s)))
        self.pods.add_handler(self._pod, lambda o, n: (self._pod(o), self._pod(n)), self._pod)

    def _pod(self, pod: dict) -> None:
        ns = pod["metadata"].get("namespace", "default")
        for svc in self.services.cache.values():
            if svc["metadata"].get("namespace") == ns and service_selects((svc.get("spec") or {}).get("selector") or {},
                                                                   pod["metadata"].get("labels")):
                self.queue.add(key_of(svc))

    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        svc = self.services.cache.get(key)
        existing = self.endpoints.cache.get(key)
        if svc is None:
            if existing is not None:
                await self.client.delete("endpoints", name, ns)
                await self._delete_slice(name, ns)
            return
        selector = (svc.get("spec") or {}).get("selector") or {}
        if not selector:
            return  # endpoints of selector-less services are managed by hand
        ready, not_ready = [], []
        ports_by_pod = []
        for pod in sorted(self.pods.cache.values(), key=key_of):
            md = pod["metadata"]
            ip = (pod.get("status") or {}).get("podIP")
            if md.get("namespace") != ns or not ip or md.get("deletionTimestamp") \
                    or not service_selects(selector, md.get("labels")):
                continue
            addr = {"ip": ip, "nodeName": (pod.get("spec") or {}).get("nodeName"),
                    "targetRef": {"kind": "Pod", "name": md["name"], "namespace": ns, "uid": md.get("uid")}}
            (ready if is_pod_ready(pod) else not_ready).append(addr)
            ports_by_pod.append(pod)
        ports = [self._port(p, ports_by_pod) for p in (svc.get("spec") or {}).get("ports") or []]
        subset: dict = {"ports": ports}
        if ready:
            subset["addresses"] = ready
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        subsets = [subset] if (ready or not_ready) else []
        body = {"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": name, "namespace": ns, "labels": svc["metadata"].get("labels") or {}},
                "subsets": subsets}
        if existing is None:
            await self.client.create("endpoints", body, namespace=ns)
        elif (existing.get("subsets") or []) != subsets:
            body["metadata"]["resourceVersion"] = existing["metadata"].get("resourceVersion")
            await self.client.update("endpoints", body)
        else:
            return
        await self._write_slice(svc, ready, not_ready, ports)

    async def _write_slice(self, svc: dict, ready: list[dict], not_ready: list[dict], ports: list[dict]) -> None:
        md = svc["metadata"]
        endpoints = [{"addresses": [a["ip"]], "conditions": {"ready": r, "serving": r, "terminating": False},
                      "nodeName": a.get("nodeName"), "targetRef": a.get("targetRef")}
                     for addrs, r in ((ready, True), (not_ready, False)) for a in addrs]
        body = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                "metadata": {"name": md["name"], "namespace": md.get("namespace", "default"),
                             "labels": {"kubernetes.io/service-name": md["name"],
                                        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                             "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": md["name"],
                                                  "uid": md.get("uid"), "controller": True,
                                                  "blockOwnerDeletion": True}]},
                "endpoints": endpoints, "ports": [{"name": "", **p} for p in ports]}  # name: never nil in a slice
        try:
            await self.client.create("endpointslices", body, namespace=body["metadata"]["namespace"])
        except ApiError as exc:
            if exc.code != 409:
                raise
            old = await self.client.get("endpointslices", md["name"], body["metadata"]["namespace"])
            body["metadata"]["resourceVersion"] = old["metadata"].get("resourceVersion")
            await self.client.update("endpointslices", body)

    async def _delete_slice(self, name: str, ns: str) -> None:
        try:
            await self.client.delete("endpointslices", name, ns)
        except ApiError as exc:
            if exc.code != 404:
                raise

    @staticmethod
    def _port(sp: dict, pods: list[dict]) -> dict:
        target = sp.get("targetPort", sp.get("port"))
        if isinstance(target, str) and not target.isdigit():
            for pod in pods:
                for c in (pod.get("spec") or {}).get("containers") or []:
                    for cp in c.get("ports") or []:
                        if cp.get("name") == target:
                            target = cp.get("containerPort")
                            break
        out = {"port": int(target) if str(target).isdigit() else 0, "protocol": sp.get("protocol", "TCP")}
        if sp.get("name"):
            out["name"] = sp["name"]
        return out
