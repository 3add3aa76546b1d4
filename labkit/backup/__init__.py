"""Backup and disaster recovery for labkit's control plane: the three kinds of backup.

* :mod:`~labkit.backup.storesnapshot` - the whole store at one revision: SQLite's online backup API
  for ``sqlite`` stores, ``etcdctl snapshot save`` for etcd. Restored, it is the cluster as it was.
* :mod:`~labkit.backup.objects` - chosen namespaces as an archive of one JSON file per object, in the
  manner of Velero: restorable into *another* cluster, with owner references rewired to new UIDs.
* volume data - CSI snapshots (``snapshot.storage.k8s.io/v1`` VolumeSnapshot objects, taken by the
  snapshot controller through the driver's ``CreateSnapshot``); a claim restores one via ``dataSource``.

:mod:`~labkit.backup.rpo` writes numbered objects while a snapshot is taken and counts what came back.
"""

from __future__ import annotations

from labkit.backup.objects import ArchiveSummary, backup_namespaces, restore_archive
from labkit.backup.storesnapshot import SnapshotInfo, restore_snapshot, snapshot_store

__all__ = ["ArchiveSummary", "SnapshotInfo", "backup_namespaces", "restore_archive", "restore_snapshot",
           "snapshot_store"]
