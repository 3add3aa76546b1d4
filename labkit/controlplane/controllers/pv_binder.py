"""The PersistentVolume binder: match each claim to a volume, provisioning one when needed.

A PersistentVolumeClaim says "I need 1Gi, ReadWriteOnce, of class labkit-hostpath". This
controller, like Kubernetes' persistentvolume controller plus an external provisioner, watches
claims and volumes through the apiserver and:

1. binds a pending claim to the smallest Available PV that fits (same class, enough capacity,
   the access modes asked for): ``pv.spec.claimRef`` and ``pvc.spec.volumeName`` point at each
   other and both become ``Bound``;
2. if none fits and the claim's StorageClass names a CSI driver that some node registered,
   calls the driver's ``CreateVolume`` and creates the PV itself (dynamic provisioning); a claim
   whose ``dataSource`` is a VolumeSnapshot gets a new volume made from that snapshot's data;
3. when a claim is deleted, releases its PV: ``Delete`` reclaim calls ``DeleteVolume`` and
   removes the PV, ``Retain`` leaves it ``Released`` with its data.

Which drivers exist, and where, it learns from the API only: a CSIDriver object names the
driver, and each node's CSINode lists the drivers registered there, with the address of the
driver's controller service (:mod:`labkit.client.csinodes`). In Kubernetes an
external-provisioner sidecar beside the driver makes the CreateVolume call; here the binder
makes it at the published address, so it never reads a node's disk or imports the node's code
to find one. ``--provisioner`` names an address by hand instead.

Run it on its own:
    python -m labkit.controlplane.controllers.pv_binder --kubeconfig KC \\
        --provisioner hostpath.csi.labkit.io=unix:///run/labkit/csi/hostpath.sock
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from labkit.client import ApiError, Client, KubeConfig, Resource, quantity
from labkit.client.csinodes import controller_endpoints
from labkit.client.events import EventRecorder
from labkit.client.informer import Informer, key_of
from labkit.controlplane.controllers.base import Controller, SharedInformers

log = logging.getLogger(__name__)

STORAGE_CLASSES = Resource("storage.k8s.io", "v1", "storageclasses", "StorageClass", namespaced=False)
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


def _request(pvc: dict) -> int:
    req = ((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}
    return quantity.value(req.get("storage", "0"))


def _capacity(pv: dict) -> int:
    return quantity.value(((pv.get("spec") or {}).get("capacity") or {}).get("storage", "0"))


def claim_class(pvc: dict, classes: list[dict]) -> str:
    """The claim's class: its own, or the default class when it names none (``""`` means none)."""
    spec = pvc.get("spec") or {}
    if spec.get("storageClassName") is not None:
        return spec["storageClassName"]
    for sc in classes:
        if (sc["metadata"].get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true":
            return sc["metadata"]["name"]
    return ""


def _data_source(pvc: dict) -> dict | None:
    """The claim's VolumeSnapshot data source (``dataSource`` or ``dataSourceRef``), if it names one."""
    spec = pvc.get("spec") or {}
    for field in ("dataSourceRef", "dataSource"):
        src = spec.get(field)
        if isinstance(src, dict) and src.get("kind") == "VolumeSnapshot" \
                and src.get("apiGroup", "snapshot.storage.k8s.io") == "snapshot.storage.k8s.io":
            return src
    return None


def find_match(pvc: dict, pvs: list[dict], storage_class: str) -> dict | None:
    """The smallest Available, unclaimed PV of the claim's class with the capacity and modes it asks."""
    want_modes = set((pvc.get("spec") or {}).get("accessModes") or [])
    need = _request(pvc)
    fits = []
    for pv in pvs:
        spec = pv.get("spec") or {}
        if spec.get("claimRef") or (pv.get("status") or {}).get("phase", "Available") not in ("Available", "Pending"):
            continue
        if (spec.get("storageClassName") or "") != storage_class:
            continue
        if not want_modes <= set(spec.get("accessModes") or []):
            continue
        if _capacity(pv) < need:
            continue
        fits.append(pv)
    return min(fits, key=_capacity) if fits else None


class PersistentVolumeBinder(Controller):
    """Reconcile claims and volumes; ``provisioners`` maps a CSI driver name to its endpoint
    (default: the endpoints the nodes published in their CSINode objects).

    One work item ("*") means "look at everything": binding is a matching problem across all
    claims and volumes, so each pass considers them together.
    """

    name = "persistentvolume-binder"
    workers = 1

    def __init__(self, client: Client, informers: SharedInformers, recorder: EventRecorder | None = None,
                 provisioners: dict[str, str] | None = None):
        super().__init__(client, informers, recorder or EventRecorder(client, "persistentvolume-controller"))
        self._provisioners = provisioners
        self.pvcs = informers.get("persistentvolumeclaims")
        self.pvs = informers.get("persistentvolumes")
        self.classes = Informer(client, STORAGE_CLASSES)
        self.csidrivers = informers.get("csidrivers")
        self.csinodes = informers.get("csinodes")
        for inf in (self.pvcs, self.pvs, self.classes, self.csidrivers, self.csinodes):
            inf.add_handler(self._enqueue_all, self._enqueue_all, self._enqueue_all)
        self._said: set[tuple[str, str, str]] = set()

    @property
    def provisioners(self) -> dict[str, list[str]]:
        """CSI driver name -> endpoints of its controller service to try, in order."""
        if self._provisioners is not None:
            return {driver: [endpoint] for driver, endpoint in self._provisioners.items()}
        return controller_endpoints(self.csinodes.list(), self.csidrivers.list())

    async def _call_driver(self, driver: str, method: str, *args):
        from labkit.csi.client import call_controller_service  # the CSI protocol's gRPC stubs

        return await call_controller_service(self.provisioners.get(driver) or [], driver, method, *args)

    def _enqueue_all(self, *_: dict) -> None:
        self.queue.add("*")

    async def run(self) -> None:
        task = asyncio.create_task(self.classes.run())
        try:
            await self.classes.wait_synced()
            self.queue.add("*")
            await super().run()
        finally:
            task.cancel()

    async def sync(self, key: str = "*") -> None:
        """One reconcile pass over every claim and volume."""
        classes = self.classes.list()
        by_name = {c["metadata"]["name"]: c for c in classes}
        pvs = self.pvs.list()
        for pv in pvs:  # a new, unclaimed volume is ready for claims: Pending -> Available
            if not (pv.get("spec") or {}).get("claimRef") and (pv.get("status") or {}).get("phase") in (None, "Pending"):
                fresh = await self.client.get("persistentvolumes", pv["metadata"]["name"])
                fresh["status"] = {"phase": "Available"}
                await self.client.update_status("persistentvolumes", fresh)
        for pvc in self.pvcs.list():
            if (pvc.get("status") or {}).get("phase") == "Bound" and (pvc.get("spec") or {}).get("volumeName"):
                continue
            sc = claim_class(pvc, classes)
            uid = pvc["metadata"].get("uid")
            # a bind already under way (our last pass, seen late through the watch) is finished, never redone
            pv = next((p for p in pvs if p["metadata"]["name"] == (pvc.get("spec") or {}).get("volumeName")), None) \
                or next((p for p in pvs if ((p.get("spec") or {}).get("claimRef") or {}).get("uid") == uid), None) \
                or (None if _data_source(pvc) else find_match(pvc, pvs, sc))  # restored data needs a new volume
            if pv is None:
                provisioner = (by_name.get(sc) or {}).get("provisioner")
                if provisioner in self.provisioners:
                    pv = await self.provision(pvc, sc, by_name[sc])
                    if pv is None:  # its data source is not ready yet: the next pass tries again
                        continue
                else:
                    why = (f"storageclass {sc!r} has provisioner {provisioner!r}, which no node has registered "
                           "(no CSINode lists it with a CSIDriver object)"
                           if provisioner else "no persistent volumes available for this claim and no storage class "
                           "that can provision one")
                    await self._event(pvc, "Warning", "FailedBinding", why)
                    continue
            await self.bind(pvc, pv)
            pvs = [p for p in pvs if p["metadata"]["name"] != pv["metadata"]["name"]]
        await self.release(pvs)

    async def provision(self, pvc: dict, sc_name: str, sc: dict) -> dict | None:
        """CreateVolume on the class's CSI driver (from the claim's snapshot, if it names one), then create
        the PV that describes it; None while the snapshot is not ready."""
        name = f"pvc-{pvc['metadata']['uid']}"
        driver = sc["provisioner"]
        snapshot = await self._snapshot_handle(pvc) if _data_source(pvc) else None
        if _data_source(pvc) and snapshot is None:
            return None
        vol = await self._call_driver(driver, "create_volume", name, _request(pvc) or 1 << 30, sc.get("parameters"),
                                      snapshot)
        pv = {
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": driver}},
            "spec": {
                "capacity": {"storage": str(vol.capacity_bytes)},
                "accessModes": (pvc.get("spec") or {}).get("accessModes") or ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy", "Delete"),
                "storageClassName": sc_name,
                "csi": {"driver": driver, "volumeHandle": vol.volume_id, "volumeAttributes": dict(vol.volume_context)},
            },
        }
        try:
            created = await self.client.create("persistentvolumes", pv)
        except ApiError as exc:
            if exc.code != 409:
                raise
            created = await self.client.get("persistentvolumes", name)
        await self._event(pvc, "Normal", "ProvisioningSucceeded",
                          f"Successfully provisioned volume {name} using {driver}")
        return created

    async def _snapshot_handle(self, pvc: dict) -> str | None:
        """The CSI snapshot id a claim's ``dataSource`` VolumeSnapshot stands for; None (and a retry soon) while not ready."""
        from labkit.controlplane.controllers.volumesnapshot import snapshot_handle

        source = _data_source(pvc) or {}
        ns = pvc["metadata"].get("namespace", "default")
        try:
            vs = await self.client.get("volumesnapshots", source.get("name", ""), ns)
            contents = (await self.client.list("volumesnapshotcontents"))["items"]
        except ApiError as exc:
            if exc.code != 404:
                raise
            vs, contents = {}, []
        handle = snapshot_handle(vs, contents) if vs else None
        if handle is None:
            why = (f"waiting for VolumeSnapshot {ns}/{source.get('name')} to be ready to use"
                   if vs else f"VolumeSnapshot {ns}/{source.get('name')} does not exist")
            await self._event(pvc, "Normal", "WaitForSnapshot", why)
            self.queue.add_after("*", 1.0)
        return handle

    async def bind(self, pvc: dict, pv: dict) -> None:
        md = pvc["metadata"]
        pv = await self.client.get("persistentvolumes", pv["metadata"]["name"])
        claim = await self.client.get("persistentvolumeclaims", md["name"], md.get("namespace", "default"))
        taken = ((pv.get("spec") or {}).get("claimRef") or {}).get("uid")
        if (taken and taken != claim["metadata"].get("uid")) or \
                (claim.get("spec") or {}).get("volumeName") not in (None, "", pv["metadata"]["name"]):
            self.queue.add("*")  # stale cache: look again with fresh eyes
            return
        pv.setdefault("spec", {})["claimRef"] = {
            "kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": md.get("namespace", "default"),
            "name": md["name"], "uid": md.get("uid"),
        }
        pv = await self.client.update("persistentvolumes", pv)
        pv["status"] = {"phase": "Bound"}
        await self.client.update_status("persistentvolumes", pv)
        claim.setdefault("spec", {})["volumeName"] = pv["metadata"]["name"]
        claim = await self.client.update("persistentvolumeclaims", claim)
        claim["status"] = {"phase": "Bound", "accessModes": pv["spec"].get("accessModes", []),
                           "capacity": pv["spec"].get("capacity", {})}
        await self.client.update_status("persistentvolumeclaims", claim)
        await self._event(claim, "Normal", "Bound", f"bound to persistentvolume {pv['metadata']['name']}")

    async def release(self, pvs: list[dict]) -> None:
        """Volumes whose claim is gone: delete (and DeleteVolume) or keep as Released."""
        claims = {(c["metadata"].get("namespace", "default"), c["metadata"]["name"]): c for c in self.pvcs.list()}
        for pv in pvs:
            ref = (pv.get("spec") or {}).get("claimRef")
            if not ref:
                continue
            claim = claims.get((ref.get("namespace", "default"), ref.get("name")))
            if claim is not None and (not ref.get("uid") or claim["metadata"].get("uid") == ref.get("uid")):
                continue
            policy = pv["spec"].get("persistentVolumeReclaimPolicy", "Retain")
            csi = pv["spec"].get("csi") or {}
            if policy == "Delete" and csi.get("driver") in self.provisioners:
                from labkit.csi.client import CSIError

                try:
                    await self._call_driver(csi["driver"], "delete_volume", csi["volumeHandle"])
                except CSIError as exc:  # e.g. a pod on its way out still has it mounted: try again soon
                    await self._event(pv, "Warning", "VolumeFailedDelete", str(exc))
                    self.queue.add_after("*", 1.0)
                    continue
                try:
                    await self.client.delete("persistentvolumes", pv["metadata"]["name"])
                except ApiError as exc:
                    if exc.code != 404:
                        raise
            elif (pv.get("status") or {}).get("phase") != "Released":
                fresh = await self.client.get("persistentvolumes", pv["metadata"]["name"])
                fresh["status"] = {"phase": "Released"}
                await self.client.update_status("persistentvolumes", fresh)

    async def _event(self, obj: dict, type_: str, reason: str, message: str) -> None:
        """Record an Event once per (object, reason, message): a pass repeats, the Event should not."""
        key = (obj["metadata"].get("uid") or key_of(obj), reason, message)
        if key in self._said:
            return
        self._said.add(key)
        try:
            self.recorder.event(obj, type_, reason, message)
        except Exception:  # events are best effort
            log.debug("event %s for %s failed", reason, key_of(obj))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m labkit.controlplane.controllers.pv_binder",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--kubeconfig", default=None)
    ap.add_argument("--provisioner", action="append", default=[], metavar="DRIVER=ENDPOINT",
                    help="a CSI driver this controller may call CreateVolume on (repeatable)")
    a = ap.parse_args(argv)
    provisioners = {}
    for item in a.provisioner:
        if "=" not in item:
            print(f"error: --provisioner wants DRIVER=ENDPOINT, got {item!r}", file=sys.stderr)
            return 2
        k, v = item.split("=", 1)
        provisioners[k] = v
    logging.basicConfig(level=logging.INFO)

    async def run() -> None:
        async with Client(KubeConfig.load(a.kubeconfig), user_agent="labkit-pv-binder") as client:
            informers = SharedInformers(client)
            binder = PersistentVolumeBinder(client, informers, provisioners=provisioners or None)
            await informers.start()
            try:
                await binder.run()
            finally:
                await informers.stop()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
