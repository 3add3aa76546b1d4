"""Lab 51's exercises: a volume restored from a snapshot, and a namespace restored from an archive.

Verify reads the cluster through the official client, and for 51.1 the restored volume itself (the
directory the hostpath CSI driver made), so a claim that is merely Bound does not pass.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

from labkit.practice import Exercise, Target, Verdict
from labkit.practice.proof import wait_until

GROUP, VERSION = "snapshot.storage.k8s.io", "v1"
TEXT = "written before the snapshot"


def _custom(t: Target) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(t.api_client)


def _claim(t: Target, name: str) -> Any:
    return next((c for c in t.core.list_namespaced_persistent_volume_claim(t.namespace).items
                 if c.metadata.name == name), None)


def _snapshot(t: Target, name: str) -> dict | None:
    items = _custom(t).list_namespaced_custom_object(GROUP, VERSION, t.namespace, "volumesnapshots")["items"]
    return next((s for s in items if s["metadata"]["name"] == name), None)


def _claim_manifest(name: str, snapshot: str | None = None) -> dict:
    spec: dict = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}}
    if snapshot:
        spec["dataSource"] = {"apiGroup": GROUP, "kind": "VolumeSnapshot", "name": snapshot}
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": spec}


def _pod_gone(t: Target, name: str) -> bool:
    return t.pod(name) is None


# --- 51.1: restore a claim from a snapshot --------------------------------------------------------
def _setup_snapshot(t: Target) -> None:
    """Claim notes with note.txt on it, written by a pod that is gone again."""
    t.core.create_namespaced_persistent_volume_claim(t.namespace, _claim_manifest("notes"))
    t.core.create_namespaced_pod(t.namespace, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "note-writer"},
                                               "spec": {"restartPolicy": "OnFailure", "volumes": [
                                                   {"name": "d", "persistentVolumeClaim": {"claimName": "notes"}}],
                                                   "containers": [{"name": "c", "image": "busybox", "command": [
                                                       "sh", "-c", f"echo '{TEXT}' > /d/note.txt"],
                                                       "volumeMounts": [{"name": "d", "mountPath": "/d"}]}]}})
    wait_until("pod note-writer to finish",
               lambda: t.core.read_namespaced_pod("note-writer", t.namespace).status.phase == "Succeeded", 60)
    t.core.delete_namespaced_pod("note-writer", t.namespace)
    wait_until("pod note-writer to go", lambda: _pod_gone(t, "note-writer"), 30)


def _verify_snapshot(t: Target) -> Verdict:
    snap = _snapshot(t, "notes-snap")
    if snap is None:
        return Verdict.not_yet("there is no VolumeSnapshot notes-snap yet (source: persistentVolumeClaimName notes)")
    if (snap["spec"].get("source") or {}).get("persistentVolumeClaimName") != "notes":
        return Verdict.not_yet("VolumeSnapshot notes-snap does not take claim notes")
    if not (snap.get("status") or {}).get("readyToUse"):
        return Verdict.not_yet("VolumeSnapshot notes-snap is not ready to use yet")
    copy = _claim(t, "notes-copy")
    if copy is None:
        return Verdict.not_yet("there is no claim notes-copy yet: give it dataSource kind VolumeSnapshot, name notes-snap")
    source = copy.spec.data_source
    if source is None or source.kind != "VolumeSnapshot" or source.name != "notes-snap":
        return Verdict.not_yet("claim notes-copy does not name VolumeSnapshot notes-snap as its dataSource")
    if copy.status.phase != "Bound":
        return Verdict.not_yet(f"claim notes-copy is {copy.status.phase}, not Bound yet")
    pv = t.core.read_persistent_volume(copy.spec.volume_name)
    folder = Path((pv.spec.csi.volume_attributes or {}).get("path", "")) if pv.spec.csi else None
    note = folder / "note.txt" if folder else None
    if note is None or not note.exists() or TEXT not in note.read_text():
        return Verdict.not_yet(f"volume {pv.metadata.name} of notes-copy has no note.txt with the snapshot's text")
    return Verdict.ok(f"notes-copy's new volume {pv.metadata.name} started with the snapshot's note.txt")


def _solve_snapshot(t: Target) -> None:
    _custom(t).create_namespaced_custom_object(GROUP, VERSION, t.namespace, "volumesnapshots", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "VolumeSnapshot", "metadata": {"name": "notes-snap"},
        "spec": {"source": {"persistentVolumeClaimName": "notes"}}})
    wait_until("notes-snap to be ready", lambda: ((_snapshot(t, "notes-snap") or {}).get("status") or {})
               .get("readyToUse"), 30)
    t.core.create_namespaced_persistent_volume_claim(t.namespace, _claim_manifest("notes-copy", "notes-snap"))
    wait_until("notes-copy to be Bound", lambda: (c := _claim(t, "notes-copy")) is not None
               and c.status.phase == "Bound", 30)


def _cleanup_snapshot(t: Target) -> None:
    """Snapshots and claims go; their volumes and the driver's copy go with them (deletionPolicy Delete)."""
    for s in _custom(t).list_namespaced_custom_object(GROUP, VERSION, t.namespace, "volumesnapshots")["items"]:
        _custom(t).delete_namespaced_custom_object(GROUP, VERSION, t.namespace, "volumesnapshots", s["metadata"]["name"])
    volumes = set()
    for c in t.core.list_namespaced_persistent_volume_claim(t.namespace).items:
        volumes.add(c.spec.volume_name)
        t.core.delete_namespaced_persistent_volume_claim(c.metadata.name, t.namespace)
    wait_until("the volumes and snapshot contents to go", lambda: not volumes & {
        pv.metadata.name for pv in t.core.list_persistent_volume().items} and not [
        c for c in _custom(t).list_cluster_custom_object(GROUP, VERSION, "volumesnapshotcontents")["items"]
        if (c["spec"].get("volumeSnapshotRef") or {}).get("namespace") == t.namespace], 30)


# --- 51.2: undo an accident from an object backup --------------------------------------------------
def _archive(t: Target) -> Path:
    return Path(t.workdir) / f"{t.namespace}.tar.gz"


def _setup_objects(t: Target) -> None:
    """Deployment web and Service web, and a note of what the cluster gave them (UID, ClusterIP)."""
    labels = {"app": "web"}
    dep = t.apps.create_namespaced_deployment(t.namespace, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels},
                 "spec": {"terminationGracePeriodSeconds": 0, "containers": [
                     {"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}}}})
    svc = t.core.create_namespaced_service(t.namespace, {"apiVersion": "v1", "kind": "Service",
                                                         "metadata": {"name": "web"},
                                                         "spec": {"selector": labels, "ports": [{"port": 80}]}})
    t.core.create_namespaced_config_map(t.namespace, {"apiVersion": "v1", "kind": "ConfigMap",
                                                      "metadata": {"name": "before-the-accident"},
                                                      "data": {"deployment-uid": dep.metadata.uid,
                                                               "cluster-ip": svc.spec.cluster_ip}})


def _verify_objects(t: Target) -> Verdict:
    archive = _archive(t)
    if not archive.exists():
        return Verdict.not_yet(f"there is no archive {archive} yet: labkit backup create --namespace {t.namespace} "
                               f"--kubeconfig KUBECONFIG {archive}")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        meta = json.loads(tar.extractfile("metadata.json").read()) if "metadata.json" in names else {}
    if f"resources/deployments/namespaces/{t.namespace}/web.json" not in names:
        return Verdict.not_yet(f"{archive.name} has no Deployment web of namespace {t.namespace}")
    before = t.core.read_namespaced_config_map("before-the-accident", t.namespace).data
    dep = t.deployment("web")
    if dep is None:
        return Verdict.not_yet("Deployment web is gone: restore it from the archive (labkit backup restore)")
    if dep.metadata.uid == before["deployment-uid"]:
        return Verdict.not_yet("Deployment web is still the original one: after the backup, delete Deployment web "
                               "and Service web (the accident), then restore them from the archive")
    svc = next((s for s in t.core.list_namespaced_service(t.namespace).items if s.metadata.name == "web"), None)
    if svc is None:
        return Verdict.not_yet("Service web is missing: it is in the archive too")
    if svc.spec.cluster_ip != before["cluster-ip"]:
        return Verdict.not_yet(f"Service web came back with ClusterIP {svc.spec.cluster_ip}, not "
                               f"{before['cluster-ip']}: was the address free when you restored?")
    return Verdict.ok(f"Deployment web is back under a new UID and Service web kept {svc.spec.cluster_ip}; "
                      f"the archive was taken from {meta.get('server', '?')}")


def _solve_objects(t: Target) -> None:
    from labkit.backup import backup_namespaces, restore_archive

    backup_namespaces([t.namespace], _archive(t), t.kubeconfig)
    t.apps.delete_namespaced_deployment("web", t.namespace)
    t.core.delete_namespaced_service("web", t.namespace)
    wait_until("Deployment web and Service web to go", lambda: t.deployment("web") is None and not [
        s for s in t.core.list_namespaced_service(t.namespace).items if s.metadata.name == "web"], 30)
    restore_archive(_archive(t), t.kubeconfig, [t.namespace])


def _cleanup_objects(t: Target) -> None:
    _archive(t).unlink(missing_ok=True)
    if t.deployment("web") is not None:
        t.apps.delete_namespaced_deployment("web", t.namespace)
    wait_until("web's pods to go", lambda: not t.core.list_namespaced_pod(t.namespace, label_selector="app=web").items,
               60)


EXERCISES = [
    Exercise(
        id="51.1",
        title="Restore a claim from a volume snapshot",
        statement="""Claim **notes** holds `note.txt` (the set-up wrote it). Take a **VolumeSnapshot
notes-snap** of it, and when it is ready to use, create a claim **notes-copy** (16Mi) whose
`dataSource` is that snapshot. The check reads `note.txt` on notes-copy's own new volume.""",
        verify=_verify_snapshot,
        solution=_solve_snapshot,
        setup=_setup_snapshot,
        cleanup=_cleanup_snapshot,
        solution_text="""```yaml
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshot
metadata: {name: notes-snap}
spec: {source: {persistentVolumeClaimName: notes}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: notes-copy}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 16Mi}}
  dataSource: {apiGroup: snapshot.storage.k8s.io, kind: VolumeSnapshot, name: notes-snap}
```
(`kubectl get volumesnapshot` shows READYTOUSE before you create the claim.)""",
        concept="VolumeSnapshots",
        difficulty="easy",
        cluster={"nodes": 1},
        needs=("root", "mount"),
        timeout=60,
    ),
    Exercise(
        id="51.2",
        title="Undo an accident from an object backup",
        statement="""Your namespace has Deployment **web** and Service **web**. Back the namespace up to
`WORKDIR/NAMESPACE.tar.gz` (the check prints the exact path) with `labkit backup create --namespace`.
Then the accident: **delete Deployment web and Service web**. Restore them from the archive with
`labkit backup restore`. The check wants a Deployment web with a new UID and Service web with its
old ClusterIP.""",
        verify=_verify_objects,
        solution=_solve_objects,
        setup=_setup_objects,
        cleanup=_cleanup_objects,
        solution_text="""```console
$ labkit backup create --kubeconfig $KUBECONFIG --namespace NS WORKDIR/NS.tar.gz
$ kubectl delete deployment web; kubectl delete service web
$ labkit backup restore --kubeconfig $KUBECONFIG --namespace NS WORKDIR/NS.tar.gz
```
Objects that were not deleted (the ReplicaSet the Deployment controller made again, the ConfigMap)
are reported as already there and left alone; the ClusterIP is free again, so it is kept.""",
        concept="object backups",
        difficulty="medium",
        cluster={"nodes": 1},
        timeout=60,
    ),
]
