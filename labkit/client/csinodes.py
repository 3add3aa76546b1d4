"""CSINode and CSIDriver objects (``storage.k8s.io/v1``): which nodes run which CSI driver.

The node side writes them when a driver registers on a node (:mod:`labkit.node.csi.registration`);
the PV binder reads them to find a provisioner. Both go through the apiserver only, so the two
sides share these helpers and nothing else.

A CSINode lists the node's drivers with the ``nodeID`` each driver uses for the node, as in
Kubernetes. labkit adds one annotation per driver, ``CONTROLLER_ENDPOINT + <driver name>``: the
address of the driver's controller service (CreateVolume, DeleteVolume). In Kubernetes an
external-provisioner sidecar runs beside the driver and dials its socket; labkit's binder plays
that sidecar's part and learns from this annotation where to dial.
"""

from __future__ import annotations

CONTROLLER_ENDPOINT = "controller-endpoint.csi.labkit.io/"


def csi_driver(name: str) -> dict:
    """The CSIDriver object of a driver that needs no attach step and serves persistent volumes."""
    return {"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": name},
            "spec": {"attachRequired": False, "podInfoOnMount": False, "volumeLifecycleModes": ["Persistent"]}}


def with_driver(csinode: dict, name: str, node_id: str, endpoint: str) -> dict:
    """``csinode`` listing the driver (replacing an older entry of the same name) and its endpoint."""
    md = dict(csinode.get("metadata") or {})
    md["annotations"] = {**(md.get("annotations") or {}), CONTROLLER_ENDPOINT + name: endpoint}
    drivers = [d for d in (csinode.get("spec") or {}).get("drivers") or [] if d.get("name") != name]
    drivers.append({"name": name, "nodeID": node_id})
    return {**csinode, "apiVersion": "storage.k8s.io/v1", "kind": "CSINode", "metadata": md,
            "spec": {**(csinode.get("spec") or {}), "drivers": drivers}}


def without_driver(csinode: dict, name: str) -> dict:
    """``csinode`` after the driver left the node (its entry and endpoint gone)."""
    md = dict(csinode.get("metadata") or {})
    md["annotations"] = {k: v for k, v in (md.get("annotations") or {}).items() if k != CONTROLLER_ENDPOINT + name}
    drivers = [d for d in (csinode.get("spec") or {}).get("drivers") or [] if d.get("name") != name]
    return {**csinode, "metadata": md, "spec": {**(csinode.get("spec") or {}), "drivers": drivers}}


def controller_endpoints(csinodes: list[dict], csidrivers: list[dict]) -> dict[str, list[str]]:
    """Driver name -> the controller-service endpoints its nodes published, in node-name order.

    Only drivers that have a CSIDriver object count: a CSINode entry alone may be a leftover.
    """
    known = {d["metadata"]["name"] for d in csidrivers}
    out: dict[str, list[str]] = {}
    for node in sorted(csinodes, key=lambda n: n["metadata"]["name"]):
        notes = node["metadata"].get("annotations") or {}
        for d in (node.get("spec") or {}).get("drivers") or []:
            endpoint = notes.get(CONTROLLER_ENDPOINT + d.get("name", ""))
            if d.get("name") in known and endpoint and endpoint not in out.get(d["name"], []):
                out.setdefault(d["name"], []).append(endpoint)
    return out
