"""A store snapshot: every key of the control plane at one revision, taken while writes go on.

Both backends have a way to copy a live database that is consistent by construction, and labkit
uses those rather than copying files (a ``cp`` of a database being written can tear):

* **sqlite** - SQLite's online backup API (``sqlite3.Connection.backup``), run in one step: it
  copies every page inside one read transaction, so the copy is the database at one commit.
* **etcd** - ``etcdctl snapshot save``, which streams etcd's maintenance Snapshot RPC: the bbolt
  file at one revision. ``etcdctl snapshot restore`` turns it into a new member's data directory.

Restoring gives a *fresh* store (a new file, or a new etcd member with a new cluster ID) that an
apiserver can be started on: the cluster as it was at the snapshot's revision.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from labkit import system_parts

SQLITE_MAGIC = b"SQLite format 3\0"


@dataclass
class SnapshotInfo:
    """What a snapshot holds: its file, the backend, the revision it stops at, its live key count."""
    path: Path
    backend: str  # "sqlite" or "etcd"
    revision: int
    keys: int
    seconds: float = 0.0  # how long taking it took
    size: int = 0

    def __str__(self) -> str:
        return (f"{self.backend} snapshot {self.path}: revision {self.revision}, {self.keys} keys, "
                f"{self.size / 1e6:.1f} MB, taken in {self.seconds:.2f} s")


@dataclass
class RestoredStore:
    """A store made from a snapshot: ``url`` opens it; ``etcd`` is the new member to stop when done."""
    url: str
    revision: int
    keys: int
    etcd: object | None = field(default=None, repr=False)  # an EtcdCluster for etcd snapshots
    folder: Path | None = None  # removed by stop(): set where the store was only for one run

    def stop(self) -> None:
        """Stop the restored etcd member, and remove the store if it lived in ``folder``."""
        if self.etcd is not None:
            self.etcd.stop()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _sqlite_path(url: str) -> Path:
    rest = url.partition(":")[2]
    if rest.startswith("//"):
        rest = rest[2:]
    rest = rest.partition("?")[0]
    if not rest:
        from labkit.paths import data_dir

        return data_dir() / "store.db"
    return Path(rest).expanduser()


def _etcd_endpoints(url: str) -> list[str]:
    if url.strip().lower() == "etcd":
        return ["http://127.0.0.1:2379"]
    return [e.strip() for e in url.partition(":")[2].split(",") if e.strip()]


def _sqlite_counts(conn: sqlite3.Connection) -> tuple[int, int]:
    """(revision, live keys) of a kine-style database."""
    rev = conn.execute("SELECT COALESCE(MAX(id), 0) FROM kine").fetchone()[0]
    keys = conn.execute("SELECT COUNT(*) FROM kine AS k WHERE deleted = 0 AND id = "
                        "(SELECT MAX(id) FROM kine WHERE name = k.name)").fetchone()[0]
    return int(rev), int(keys)


def _sqlite_copy(src_path: Path, dest: Path) -> tuple[int, int]:
    """Online backup of ``src_path`` into ``dest`` in one step (one read transaction: one commit's state)."""
    tmp = dest.with_name(dest.name + ".part")
    tmp.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True)
    dst = sqlite3.connect(str(tmp))
    try:
        src.backup(dst)  # pages=-1: the whole database in one step
        dst.execute("PRAGMA journal_mode=DELETE")  # a self-contained file, no -wal beside it
        counts = _sqlite_counts(dst)
    except sqlite3.DatabaseError as exc:
        tmp.unlink(missing_ok=True)
        raise ValueError(f"{src_path} is not a labkit sqlite store ({exc})") from exc
    finally:
        dst.close()
        src.close()
    os.replace(tmp, dest)
    return counts


def _etcdctl() -> str:
    exe = shutil.which("etcdctl")
    if exe is None:
        raise FileNotFoundError(system_parts.not_installed("etcdctl"))
    return exe


def _run_etcdctl(*args: str, timeout: float = 60.0) -> str:
    out = subprocess.run([_etcdctl(), *args], capture_output=True, text=True, timeout=timeout,
                         env=dict(os.environ, ETCDCTL_API="3"))
    if out.returncode != 0:
        raise RuntimeError(f"etcdctl {' '.join(args)} failed: {(out.stderr or out.stdout).strip()}")
    return out.stdout


def _etcd_status(path: Path) -> tuple[int, int]:
    status = json.loads(_run_etcdctl("snapshot", "status", str(path), "-w", "json"))
    return int(status.get("revision", 0)), int(status.get("totalKey", 0))


def snapshot_store(store_url: str, dest: str | os.PathLike) -> SnapshotInfo:
    """Snapshot the store at ``store_url`` (``sqlite:PATH`` or ``etcd:http://...``) into the file ``dest``.

    Safe while the apiserver keeps writing: the copy is the store at one revision, and every
    write acknowledged before this call started is in it.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    scheme = store_url.strip().partition(":")[0].lower()
    t0 = time.perf_counter()
    if scheme == "sqlite":
        src = _sqlite_path(store_url)
        if not src.exists():
            raise FileNotFoundError(f"no sqlite store at {src}: is {store_url!r} the store the apiserver runs on?")
        rev, keys = _sqlite_copy(src, dest)
        backend = "sqlite"
    elif scheme == "etcd":
        endpoints = _etcd_endpoints(store_url)
        if not endpoints:
            raise ValueError(f"store URL {store_url!r} names no etcd member")
        tmp = dest.with_name(dest.name + ".part")
        tmp.unlink(missing_ok=True)
        _run_etcdctl("--endpoints", endpoints[0], "snapshot", "save", str(tmp))
        os.replace(tmp, dest)
        rev, keys = _etcd_status(dest)
        backend = "etcd"
    elif scheme == "memory":
        raise ValueError("a memory store lives only inside its apiserver's process: snapshot a sqlite or etcd "
                         "store, or take an object backup (labkit backup create --namespace ...)")
    else:
        raise ValueError(f"unknown store {store_url!r}: use 'sqlite:PATH' or 'etcd:http://HOST:PORT'")
    return SnapshotInfo(dest, backend, rev, keys, time.perf_counter() - t0, dest.stat().st_size)


def snapshot_backend(path: str | os.PathLike) -> str:
    """Which backend wrote a snapshot file: SQLite's files start with their magic string."""
    with open(path, "rb") as f:
        return "sqlite" if f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC else "etcd"


def restore_snapshot(snapshot: str | os.PathLike, target: str | os.PathLike, start: bool = True) -> RestoredStore:
    """Make a fresh store from ``snapshot`` at ``target`` and return its URL.

    sqlite: ``target`` is the new database file (it must not exist). etcd: ``target`` is a new
    directory; a one-member etcd is restored into it and, with ``start``, started (``RestoredStore.stop()``
    ends it; ``RestoredStore.etcd.start()`` starts one left stopped).
    """
    snapshot, target = Path(snapshot), Path(target)
    if not snapshot.is_file():
        raise FileNotFoundError(f"no snapshot at {snapshot}: make one with `labkit backup create --store URL FILE`")
    if target.exists() and (target.is_file() or any(target.iterdir())):
        raise FileExistsError(f"{target} already exists: restore into a new path (a restore never overwrites)")
    if snapshot_backend(snapshot) == "sqlite":
        target.parent.mkdir(parents=True, exist_ok=True)
        rev, keys = _sqlite_copy(snapshot, target)
        return RestoredStore(f"sqlite:{target}", rev, keys)
    from labkit.controlplane.store.etcd_server import EtcdCluster

    rev, keys = _etcd_status(snapshot)
    cluster = EtcdCluster(1, target, keep_data=True)
    m = cluster.members[0]
    _run_etcdctl("snapshot", "restore", str(snapshot), "--name", m.name, "--data-dir", str(m.data_dir),
                 "--initial-cluster", f"{m.name}={m.peer_url}", "--initial-advertise-peer-urls", m.peer_url,
                 "--initial-cluster-token", cluster.token)
    if start:
        cluster.start()
    return RestoredStore(cluster.url, rev, keys, cluster)
