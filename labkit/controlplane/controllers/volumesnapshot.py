"""The snapshot controller: turn each VolumeSnapshot into a CSI snapshot and a VolumeSnapshotContent.

In Kubernetes two programs share this job: the snapshot-controller (bind a VolumeSnapshot to a
VolumeSnapshotContent) and the csi-snapshotter sidecar beside the driver (call ``CreateSnapshot``).
labkit's controller does both, the way its PV binder plays the external-provisioner:

1. a VolumeSnapshot of a claim that is not bound yet: find the claim's PersistentVolume and its
   CSI volume handle, the snapshot class (named, or the default for that driver), and call the
   driver's ``CreateSnapshot`` at an endpoint a node published in its CSINode;
2. create the VolumeSnapshotContent ``snapcontent-<snapshot uid>`` that records the driver's
   snapshot handle, and write ``boundVolumeSnapshotContentName``, ``readyToUse`` and
   ``restoreSize`` into both statuses;
3. a content whose VolumeSnapshot is gone: ``deletionPolicy: Delete`` calls ``DeleteSnapshot`` and
   removes the content, ``Retain`` keeps both (the data stays, for a later import).

A claim with ``dataSource: {kind: VolumeSnapshot, ...}`` is restored by the PV binder, which passes
the snapshot handle to ``CreateVolume`` as the new volume's content source.
"""

from __future__ import annotations

import asyncio
import logging
import time

from labkit.client import ApiError, Client
from labkit.client.csinodes import controller_endpoints
from labkit.client.events import EventRecorder
from labkit.client.informer import Informer, key_of
from labkit.controlplane.controllers.base import Controller, SharedInformers

log = logging.getLogger(__name__)

DEFAULT_SNAPSHOT_CLASS_ANNOTATION = "snapshot.storage.kubernetes.io/is-default-class"
GROUP_VERSION = "snapshot.storage.k8s.io/v1"


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def snapshot_class_for(vs: dict, classes: list[dict], driver: str) -> dict | None:
    """The class the snapshot names, or the default class of the volume's driver."""
    wanted = (vs.get("spec") or {}).get("volumeSnapshotClassName")
    for c in classes:
        if wanted and c["metadata"]["name"] == wanted:
            return c
    if wanted:
        return None
    for c in classes:
        notes = c["metadata"].get("annotations") or {}
        if c.get("driver") == driver and notes.get(DEFAULT_SNAPSHOT_CLASS_ANNOTATION) == "true":
            return c
    return None


class VolumeSnapshotController(Controller):
    """One work item ("*"): each pass looks at every snapshot and content, as the binder does."""

    name = "snapshot-controller"
    workers = 1

    def __init__(self, client: Client, informers: SharedInformers, recorder: EventRecorder | None = None):
        super().__init__(client, informers, recorder or EventRecorder(client, "snapshot-controller"))
        # its own informers, started in run() once the API is known to serve the group: on a real
        # cluster without the snapshot CRDs the shared ones would never sync and hold up every controller
        self.snapshots = Informer(client, "volumesnapshots")
        self.contents = Informer(client, "volumesnapshotcontents")
        self.classes = Informer(client, "volumesnapshotclasses")
        self.pvcs = informers.get("persistentvolumeclaims")
        self.pvs = informers.get("persistentvolumes")
        self.csidrivers = informers.get("csidrivers")
        self.csinodes = informers.get("csinodes")
        for inf in (self.snapshots, self.contents, self.classes, self.pvcs, self.pvs, self.csinodes):
            inf.add_handler(self._enqueue_all, self._enqueue_all, self._enqueue_all)
        self._said: set[tuple[str, str]] = set()

    def _enqueue_all(self, *_: dict) -> None:
        self.queue.add("*")

    async def run(self) -> None:
        try:
            await self.client.request("GET", f"/apis/{GROUP_VERSION}")
        except ApiError as exc:
            if exc.code != 404:
                raise
            log.info("%s: the API does not serve %s; no snapshots to take", self.name, GROUP_VERSION)
            return
        own = [self.snapshots, self.contents, self.classes]
        tasks = [asyncio.create_task(inf.run()) for inf in own]
        try:
            for inf in own:
                await inf.wait_synced(60)
            self.queue.add("*")
            await super().run()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def call_driver(self, driver: str, method: str, *args):
        from labkit.csi.client import call_controller_service

        endpoints = controller_endpoints(self.csinodes.list(), self.csidrivers.list()).get(driver) or []
        return await call_controller_service(endpoints, driver, method, *args)

    async def sync(self, key: str = "*") -> None:
        contents = {c["metadata"]["name"]: c for c in self.contents.list()}
        live = {vs["metadata"].get("uid") for vs in self.snapshots.list()}
        for vs in self.snapshots.list():
            if vs["metadata"].get("deletionTimestamp"):
                continue
            if not (vs.get("status") or {}).get("boundVolumeSnapshotContentName"):
                await self.take(vs, contents)
        for c in contents.values():
            ref = (c.get("spec") or {}).get("volumeSnapshotRef") or {}
            if ref.get("uid") and ref["uid"] not in live:
                await self.release(c)

    async def take(self, vs: dict, contents: dict[str, dict]) -> None:
        md = vs["metadata"]
        ns = md.get("namespace", "default")
        source = (vs.get("spec") or {}).get("source") or {}
        claim_name = source.get("persistentVolumeClaimName")
        if not claim_name:
            await self._event(vs, "Warning", "SnapshotContentMissing",
                              "pre-provisioned snapshots (source.volumeSnapshotContentName) are not taken by labkit's "
                              "controller; create the VolumeSnapshotContent with status.snapshotHandle yourself")
            return
        pvc = next((p for p in self.pvcs.list() if p["metadata"]["name"] == claim_name
                    and p["metadata"].get("namespace", "default") == ns), None)
        volume = (pvc or {}).get("spec", {}).get("volumeName")
        pv = next((p for p in self.pvs.list() if p["metadata"]["name"] == volume), None) if volume else None
        csi = ((pv or {}).get("spec") or {}).get("csi") or {}
        if not csi.get("volumeHandle"):
            await self._event(vs, "Warning", "SnapshotPending",
                              f"claim {ns}/{claim_name} is not bound to a CSI volume yet")
            self.queue.add_after("*", 1.0)
            return
        cls = snapshot_class_for(vs, self.classes.list(), csi["driver"])
        if cls is None:
            await self._event(vs, "Warning", "SnapshotClassMissing",
                              f"no VolumeSnapshotClass for driver {csi['driver']}: name one in "
                              "spec.volumeSnapshotClassName or mark one as the default")
            return
        name = f"snapshot-{md['uid']}"
        snap = await self.call_driver(csi["driver"], "create_snapshot", name, csi["volumeHandle"],
                                      dict(cls.get("parameters") or {}))
        created = snap.creation_time.ToSeconds() if snap.HasField("creation_time") else time.time()
        content_name = f"snapcontent-{md['uid']}"
        status = {"snapshotHandle": snap.snapshot_id, "readyToUse": bool(snap.ready_to_use),
                  "restoreSize": int(snap.size_bytes), "creationTime": int(created * 1e9)}
        content = contents.get(content_name)
        if content is None:
            body = {"apiVersion": GROUP_VERSION, "kind": "VolumeSnapshotContent", "metadata": {"name": content_name},
                    "spec": {"driver": csi["driver"], "deletionPolicy": cls.get("deletionPolicy", "Delete"),
                             "volumeSnapshotClassName": cls["metadata"]["name"],
                             "source": {"volumeHandle": csi["volumeHandle"]},
                             "volumeSnapshotRef": {"apiVersion": GROUP_VERSION, "kind": "VolumeSnapshot",
                                                   "name": md["name"], "namespace": ns, "uid": md["uid"]}}}
            try:
                content = await self.client.create("volumesnapshotcontents", body)
            except ApiError as exc:
                if exc.code != 409:
                    raise
                content = await self.client.get("volumesnapshotcontents", content_name)
        content["status"] = status
        await self.client.update_status("volumesnapshotcontents", content)
        fresh = await self.client.get("volumesnapshots", md["name"], ns)
        if not (fresh.get("spec") or {}).get("volumeSnapshotClassName"):  # the default class, written down
            fresh.setdefault("spec", {})["volumeSnapshotClassName"] = cls["metadata"]["name"]
            fresh = await self.client.update("volumesnapshots", fresh)
        fresh["status"] = {"boundVolumeSnapshotContentName": content_name, "readyToUse": status["readyToUse"],
                           "restoreSize": str(status["restoreSize"]), "creationTime": _iso(created)}
        await self.client.update_status("volumesnapshots", fresh)
        await self._event(vs, "Normal", "SnapshotReady",
                          f"snapshot {snap.snapshot_id} of volume {csi['volumeHandle']} is ready to use")

    async def release(self, content: dict) -> None:
        spec = content.get("spec") or {}
        if spec.get("deletionPolicy") != "Delete":
            return
        handle = (content.get("status") or {}).get("snapshotHandle")
        if handle:
            await self.call_driver(spec.get("driver", ""), "delete_snapshot", handle)
        try:
            await self.client.delete("volumesnapshotcontents", content["metadata"]["name"])
        except ApiError as exc:
            if exc.code != 404:
                raise

    async def _event(self, obj: dict, type_: str, reason: str, message: str) -> None:
        key = (obj["metadata"].get("uid") or key_of(obj), reason + message)
        if key in self._said:
            return
        self._said.add(key)
        try:
            self.recorder.event(obj, type_, reason, message)
        except Exception:  # events are best effort
            log.debug("event %s for %s failed", reason, key_of(obj))


def snapshot_handle(vs: dict, contents: list[dict]) -> str | None:
    """The driver's snapshot id behind a ready VolumeSnapshot (None while it is not ready)."""
    status = vs.get("status") or {}
    if not status.get("readyToUse"):
        return None
    name = status.get("boundVolumeSnapshotContentName")
    for c in contents:
        if c["metadata"]["name"] == name:
            return (c.get("status") or {}).get("snapshotHandle")
    return None
