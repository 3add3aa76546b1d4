"""The storage every labkit cluster starts with: a default StorageClass for the hostpath CSI driver.

kind, minikube and k3s install one StorageClass marked ``storageclass.kubernetes.io/is-default-class``
so that a PersistentVolumeClaim naming no class binds: the apiserver's DefaultStorageClass admission
step writes the default's name into the claim, and the PV binder provisions a volume through the
driver every node runs (:mod:`labkit.node.csi`). labkit's class is called ``standard``, as kind's is.
"""

from __future__ import annotations

from labkit.client import ApiError
from labkit.client.blocking import BlockingClient

DEFAULT_CLASS = "standard"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


def default_storage_class() -> dict:
    """The StorageClass object: hostpath volumes, deleted with their claims, bound at once."""
    from labkit.node.csi.driver import DRIVER_NAME

    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": DEFAULT_CLASS, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"},
                         "labels": {"app.kubernetes.io/managed-by": "labkit"}},
            "provisioner": DRIVER_NAME, "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}


DEFAULT_SNAPSHOT_CLASS = "csi-hostpath-snapclass"


def default_snapshot_class() -> dict:
    """The default VolumeSnapshotClass for the same driver (the upstream hostpath example's name)."""
    from labkit.node.csi.driver import DRIVER_NAME

    return {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
            "metadata": {"name": DEFAULT_SNAPSHOT_CLASS,
                         "annotations": {"snapshot.storage.kubernetes.io/is-default-class": "true"},
                         "labels": {"app.kubernetes.io/managed-by": "labkit"}},
            "driver": DRIVER_NAME, "deletionPolicy": "Delete"}


def install_storage_defaults(kubeconfig: str, timeout: float = 10.0) -> None:
    """Create the default StorageClass and VolumeSnapshotClass unless the cluster already has them
    (a restarted cluster does)."""
    client = BlockingClient(kubeconfig, user_agent="labkit-cluster/storage-defaults", timeout=timeout)
    try:
        for plural, obj in (("storageclasses", default_storage_class()),
                            ("volumesnapshotclasses", default_snapshot_class())):
            try:
                client.call("create", plural, obj)
            except ApiError as exc:
                if exc.code != 409:
                    raise
    finally:
        client.close()
