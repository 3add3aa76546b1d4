"""Service addresses: the cluster-IP and node-port allocators a Service meets at create.

kube-apiserver keeps bitmaps of used addresses; here the used ones are read from the stored
Services, which is enough for a toy cluster and needs no second record to keep consistent.
"""

from __future__ import annotations

import random

from labkit.controlplane.store import Store

from . import errors
from .codec import decode
from .resources import BY_PLURAL


def allocate_service_addresses(store: Store, svc: dict) -> None:
    """A unique cluster IP from 10.96.0.0/16, and node ports from 30000-32767, like the real allocators."""
    spec = svc["spec"]
    kvs, _ = store.list(BY_PLURAL["services"].key_prefix())
    used_ips, used_ports = set(), set()
    for kv in kvs:
        other = (decode(kv.value).get("spec") or {})
        used_ips.add(other.get("clusterIP"))
        used_ports.update(p.get("nodePort") for p in other.get("ports") or [] if isinstance(p, dict))
    name = svc["metadata"]["name"]
    ip = spec.get("clusterIP")
    if spec.get("type") != "ExternalName":
        if ip and ip != "None" and ip in used_ips:
            raise errors.invalid("Service", "", name, [errors.cause(
                "spec.clusterIPs", f'Invalid value: ["{ip}"]: failed to allocate IP {ip}: provided IP is '
                "already allocated")])
        if not ip:
            free = [f"10.96.{i >> 8}.{i & 255}" for i in random.sample(range(10, 65534), 64)]
            ip = next((a for a in free if a not in used_ips and not a.endswith((".0", ".255"))), None)
            if ip is None:
                raise errors.StatusError(500, "InternalError", "no free cluster IP in 10.96.0.0/16")
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
    if spec.get("type") in ("NodePort", "LoadBalancer"):
        for port in spec.get("ports") or []:
            if not port.get("nodePort"):
                candidates = [p for p in random.sample(range(30000, 32768), 64) if p not in used_ports]
                port["nodePort"] = candidates[0]
                used_ports.add(candidates[0])
            elif not isinstance(port["nodePort"], int) or not 30000 <= port["nodePort"] <= 32767:
                raise errors.invalid("Service", "", name, [errors.cause(
                    f"spec.ports[{spec['ports'].index(port)}].nodePort", f"Invalid value: {port['nodePort']}: "
                    "provided port is not in the valid range. The range of valid ports is 30000-32767")])
            elif port["nodePort"] in used_ports:
                raise errors.invalid("Service", "", name, [errors.cause(
                    "spec.ports.nodePort", f"Invalid value: {port['nodePort']}: provided port is already "
                    "allocated")])
