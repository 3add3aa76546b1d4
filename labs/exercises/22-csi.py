"""Lab 22's exercises: storage that outlives pods, claims, and pod restarts.

Verify reads the cluster through the official client, then the volume itself: the directory the
hostpath CSI driver made (``spec.csi.volumeAttributes.path`` of the PersistentVolume), so a pod
that only *said* it wrote something does not pass.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from labkit.practice import Exercise, Target, Verdict
from labkit.practice.proof import wait_until

DRIVER = "hostpath.csi.labkit.io"
NEEDS = ("root", "mount")


def _storage(t: Target) -> Any:
    from kubernetes import client

    return client.StorageV1Api(t.api_client)


def _claim(t: Target, name: str) -> Any:
    matches = [c for c in t.core.list_namespaced_persistent_volume_claim(t.namespace).items
               if c.metadata.name == name]
    return matches[0] if matches else None


def _volume_dir(pv: Any) -> Path | None:
    """Where the driver keeps this volume's files on the host."""
    csi = pv.spec.csi
    if csi is None or csi.driver != DRIVER:
        return None
    path = (csi.volume_attributes or {}).get("path")
    return Path(path) if path else None


def _bound_dir(t: Target, claim_name: str) -> tuple[Path | None, str]:
    """(the volume's folder, "") for a Bound claim, or (None, what is missing)."""
    claim = _claim(t, claim_name)
    if claim is None:
        return None, f"there is no PersistentVolumeClaim {claim_name!r} in {t.namespace!r} yet"
    if claim.status.phase != "Bound":
        return None, f"claim {claim_name} is {claim.status.phase}, not Bound yet"
    folder = _volume_dir(t.core.read_persistent_volume(claim.spec.volume_name))
    if folder is None:
        return None, f"claim {claim_name}'s volume does not come from the {DRIVER} driver"
    return folder, ""


def _delete_claims(t: Target, names: list[str]) -> None:
    """Delete claims and wait until their volumes (class standard: Delete) and files are gone."""
    pvs = [c.spec.volume_name for n in names if (c := _claim(t, n)) is not None and c.spec.volume_name]
    for n in names:
        if _claim(t, n) is not None:
            t.core.delete_namespaced_persistent_volume_claim(n, t.namespace)
    left = set(pvs)
    wait_until(f"volumes {sorted(left)} to be deleted",
          lambda: not left & {pv.metadata.name for pv in t.core.list_persistent_volume().items}, 30)


def _pod_exists(t: Target, name: str) -> bool:
    return any(p.metadata.name == name for p in t.core.list_namespaced_pod(t.namespace).items)


def _claim_manifest(name: str, storage_class: str | None = None) -> dict:
    spec: dict = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": spec}


def _writer(name: str, claim: str, script: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                     "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}],
                     "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", script],
                                     "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}}


def _run_and_delete(t: Target, pod: dict) -> None:
    """Create a pod, wait until it has finished, delete it and wait until it is gone."""
    name = pod["metadata"]["name"]
    t.core.create_namespaced_pod(t.namespace, pod)
    wait_until(f"pod {name} to finish",
          lambda: t.core.read_namespaced_pod(name, t.namespace).status.phase in ("Succeeded", "Failed"))
    t.core.delete_namespaced_pod(name, t.namespace)
    wait_until(f"pod {name} to go", lambda: not _pod_exists(t, name))


# --- 22.1: data that survives its pod -------------------------------------------------------
def _verify_survives(t: Target) -> Verdict:
    folder, problem = _bound_dir(t, "notes")
    if folder is None:
        return Verdict.not_yet(problem)
    note = folder / "note.txt"
    text = note.read_text() if note.exists() else ""
    if "survived" not in text:
        return Verdict.not_yet("the volume of claim notes has no note.txt containing 'survived' yet: write it from "
                               "a pod that mounts the claim")
    if _pod_exists(t, "writer"):
        return Verdict.not_yet("note.txt is on the volume; now delete the pod writer: the data must outlive it")
    return Verdict.ok(f"pod writer is gone and its note is still on the volume ({folder.name})")


def _solve_survives(t: Target) -> None:
    t.core.create_namespaced_persistent_volume_claim(t.namespace, _claim_manifest("notes"))
    _run_and_delete(t, _writer("writer", "notes", "echo survived > /data/note.txt"))


# --- 22.2: a volume that outlives its claim ----------------------------------------------------
def _keep_class(t: Target) -> str:
    return f"{t.namespace}-keep"


def _pvs_for(t: Target, claim_name: str) -> list[Any]:
    return [pv for pv in t.core.list_persistent_volume().items
            if pv.spec.claim_ref and pv.spec.claim_ref.namespace == t.namespace
            and pv.spec.claim_ref.name == claim_name]


def _verify_retain(t: Target) -> Verdict:
    from kubernetes.client.rest import ApiException

    cls = _keep_class(t)
    try:
        sc = _storage(t).read_storage_class(cls)
    except ApiException as err:
        if err.status == 404:
            return Verdict.not_yet(f"there is no StorageClass {cls!r} yet (provisioner {DRIVER}, reclaimPolicy Retain)")
        raise
    if sc.reclaim_policy != "Retain":
        return Verdict.not_yet(f"StorageClass {cls} has reclaimPolicy {sc.reclaim_policy}; a class's policy is "
                               "fixed at creation: delete it and create it again with Retain")
    claim = _claim(t, "keep")
    pvs = _pvs_for(t, "keep")
    if claim is not None:
        if claim.spec.storage_class_name != cls:
            return Verdict.not_yet(f"claim keep uses class {claim.spec.storage_class_name}, not {cls}")
        return Verdict.not_yet("claim keep exists: write a file onto its volume from a pod, then delete the pod "
                               "and the claim")
    if not pvs:
        return Verdict.not_yet(f"no PersistentVolume was ever bound to a claim keep in {t.namespace!r}, or it was "
                               "deleted with the claim (reclaimPolicy Delete)")
    pv = pvs[0]
    if pv.status.phase != "Released":
        return Verdict.not_yet(f"volume {pv.metadata.name} is {pv.status.phase}, not Released yet")
    folder = _volume_dir(pv)
    if folder is None or not folder.is_dir() or not any(folder.iterdir()):
        return Verdict.not_yet(f"volume {pv.metadata.name} was kept but holds no file: write one before deleting "
                               "the claim")
    return Verdict.ok(f"claim keep is gone; volume {pv.metadata.name} is Released with its files "
                      f"({', '.join(sorted(p.name for p in folder.iterdir()))})")


def _solve_retain(t: Target) -> None:
    _storage(t).create_storage_class({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                                      "metadata": {"name": _keep_class(t)}, "provisioner": DRIVER,
                                      "reclaimPolicy": "Retain"})
    t.core.create_namespaced_persistent_volume_claim(t.namespace, _claim_manifest("keep", _keep_class(t)))
    _run_and_delete(t, _writer("keeper", "keep", "date > /data/written-at"))
    t.core.delete_namespaced_persistent_volume_claim("keep", t.namespace)


def _cleanup_retain(t: Target) -> None:
    """A Retain volume stays by design: remove it, its files, and the class (all cluster-wide)."""
    from kubernetes.client.rest import ApiException

    for pv in _pvs_for(t, "keep"):
        folder = _volume_dir(pv)
        try:
            t.core.delete_persistent_volume(pv.metadata.name)
        except ApiException as err:
            if err.status != 404:
                raise
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    try:
        _storage(t).delete_storage_class(_keep_class(t))
    except ApiException as err:
        if err.status != 404:
            raise


# --- 22.3: each replica its own volume, across restarts ------------------------------------------
def _verify_statefulset(t: Target) -> Verdict:
    starts = {}
    for i in range(2):
        folder, problem = _bound_dir(t, f"data-db-{i}")
        if folder is None:
            return Verdict.not_yet(f"{problem} (a StatefulSet db with a volumeClaimTemplate named data makes it)")
        f = folder / "starts"
        starts[i] = f.read_text().split() if f.exists() else []
        if not starts[i]:
            return Verdict.not_yet(f"the volume of data-db-{i} has no /data/starts yet: append the pod's hostname "
                                   "to it each time the container starts")
        if set(starts[i]) != {f"db-{i}"}:
            return Verdict.not_yet(f"the volume of data-db-{i} was written by {sorted(set(starts[i]))}; only db-{i} "
                                   "should ever see it")
    if len(starts[0]) < 2:
        return Verdict.not_yet("db-0 has started once; delete pod db-0 and let the StatefulSet bring it back: "
                               "the new pod must find the old line")
    return Verdict.ok(f"db-0 started {len(starts[0])} times on the same volume; db-1's volume is its own")


DB_SCRIPT = "hostname >> /data/starts; sleep 3600"


def _solve_statefulset(t: Target) -> None:
    t.core.create_namespaced_service(t.namespace, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
                                                  "spec": {"clusterIP": "None", "selector": {"app": "db"},
                                                           "ports": [{"port": 5432}]}})
    t.apps.create_namespaced_stateful_set(t.namespace, {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"serviceName": "db", "replicas": 2, "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}},
                              "spec": {"terminationGracePeriodSeconds": 0, "containers": [{
                                  "name": "db", "image": "busybox", "command": ["sh", "-c", DB_SCRIPT],
                                  "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                     "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}}}]}})
    wait_until("db to have 2 ready replicas",
          lambda: (t.apps.read_namespaced_stateful_set("db", t.namespace).status.ready_replicas or 0) == 2, 90)
    old = t.core.read_namespaced_pod("db-0", t.namespace).metadata.uid
    t.core.delete_namespaced_pod("db-0", t.namespace)

    def back() -> bool:
        p = [p for p in t.core.list_namespaced_pod(t.namespace).items if p.metadata.name == "db-0"]
        return bool(p) and p[0].metadata.uid != old and p[0].status.phase == "Running"
    wait_until("db-0 to come back", back, 90)


def _cleanup_statefulset(t: Target) -> None:
    """Claims from a volumeClaimTemplate stay when the set goes: scale to 0 and delete set and claims."""
    from kubernetes.client.rest import ApiException

    try:
        t.apps.delete_namespaced_stateful_set("db", t.namespace)
    except ApiException as err:
        if err.status != 404:
            raise
    for pod in t.core.list_namespaced_pod(t.namespace, label_selector="app=db").items:
        try:
            t.core.delete_namespaced_pod(pod.metadata.name, t.namespace, grace_period_seconds=0)
        except ApiException as err:
            if err.status != 404:  # the set's deletion may have taken it already
                raise
    wait_until("db's pods to go", lambda: not t.core.list_namespaced_pod(t.namespace, label_selector="app=db").items, 60)
    _delete_claims(t, ["data-db-0", "data-db-1"])


def _cleanup_survives(t: Target) -> None:
    from kubernetes.client.rest import ApiException

    try:
        t.core.delete_namespaced_pod("writer", t.namespace, grace_period_seconds=0)
    except ApiException as err:
        if err.status != 404:
            raise
    wait_until("pod writer to go", lambda: not _pod_exists(t, "writer"), 30)
    _delete_claims(t, ["notes"])


EXERCISES = [
    Exercise(
        id="22.1",
        title="Make data survive its pod",
        statement="""Create a PersistentVolumeClaim **notes** (16Mi; the default StorageClass will do) and a
pod **writer** that mounts it and writes the word `survived` into `note.txt` at the volume's root.
When the pod has finished, **delete it**. The check reads the file on the volume itself, where the CSI
driver keeps it, and wants the pod gone.""",
        verify=_verify_survives,
        solution=_solve_survives,
        cleanup=_cleanup_survives,
        solution_text="""```yaml
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: notes}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 16Mi}}}
---
apiVersion: v1
kind: Pod
metadata: {name: writer}
spec:
  restartPolicy: Never
  volumes: [{name: data, persistentVolumeClaim: {claimName: notes}}]
  containers:
  - {name: c, image: busybox, command: [sh, -c, "echo survived > /data/note.txt"],
     volumeMounts: [{name: data, mountPath: /data}]}
```
then, once it has Succeeded: `kubectl delete pod writer`.""",
        concept="PersistentVolumeClaims",
        difficulty="easy",
        cluster={"nodes": 2},
        needs=NEEDS,
        timeout=30,
    ),
    Exercise(
        id="22.2",
        title="Keep the volume when its claim goes",
        statement=f"""The default class deletes a volume with its claim (`reclaimPolicy: Delete`). Create a
StorageClass **NAMESPACE-keep** (in the notebook `default-keep`; provisioner `{DRIVER}`) that **retains**
its volumes, a claim **keep** of that class, write any file onto the volume from a pod, then delete the
pod and **the claim**. The check wants the PersistentVolume `Released`, with your file still in it.""",
        verify=_verify_retain,
        solution=_solve_retain,
        solution_text=f"""```yaml
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {{name: default-keep}}
provisioner: {DRIVER}
reclaimPolicy: Retain
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: keep}}
spec: {{storageClassName: default-keep, accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 16Mi}}}}}}
```
A pod that writes `/data/written-at` on it; then `kubectl delete pod keeper; kubectl delete pvc keep`.""",
        cleanup=_cleanup_retain,
        concept="reclaim policies",
        difficulty="medium",
        cluster={"nodes": 2},
        needs=NEEDS,
        timeout=30,
    ),
    Exercise(
        id="22.3",
        title="Each replica its own volume, across restarts",
        statement="""Run a StatefulSet **db** (2 replicas, busybox) with a volumeClaimTemplate **data**
mounted at `/data`, whose container appends its hostname to `/data/starts` each time it starts
(`hostname >> /data/starts; sleep 3600`). Then delete pod **db-0**. The check reads both volumes: each
must have been written only by its own replica, and db-0's must hold two starts.""",
        verify=_verify_statefulset,
        solution=_solve_statefulset,
        solution_text="""A headless Service db and:

```yaml
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - {name: db, image: busybox, command: [sh, -c, "hostname >> /data/starts; sleep 3600"],
         volumeMounts: [{name: data, mountPath: /data}]}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 16Mi}}}
```
then `kubectl delete pod db-0` and wait until the StatefulSet has brought it back.""",
        cleanup=_cleanup_statefulset,
        concept="StatefulSets and volumeClaimTemplates",
        difficulty="hard",
        cluster={"nodes": 2},
        needs=NEEDS,
        timeout=30,
    ),
]
