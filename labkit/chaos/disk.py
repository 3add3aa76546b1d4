"""``store-disk-full``: the disk under the cluster's store fills up; writes fail, reads go on.

LitmusChaos calls filling a disk ``disk-fill``. Filling a real disk would fill it for everyone on
the machine, so the fault only fills a small tmpfs: start the cluster with its store on one
(:func:`small_disk`), and the fault fills it with a ballast file, holds, and deletes the file.

What a learner should see, as with etcd when its space quota is exceeded (the NOSPACE alarm,
"etcdserver: mvcc: database space exceeded"): every write is refused with an error that says the
store is out of space, every read still answers, and once space is back writes succeed again -
with nothing that was acknowledged before lost. (kube-apiserver answers etcd's error with a 500;
labkit's apiserver answers 503 ServiceUnavailable, the code it gives any store that cannot write.)
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from labkit import paths
from labkit.chaos.fault import Fault
from labkit.chaos.journal import Journal
from labkit.chaos.target import ChaosError

MAX_FILL = 1 << 30  # never fill a filesystem larger than this
DISK = "labkit-chaos-disk"  # the source name of small_disk() mounts: the only filesystems filled


def small_disk(size: str = "16m") -> Path:
    """Mount a tmpfs of ``size`` for a store (``Cluster(store=f"sqlite:{disk}/store.db")``); returns its folder.

    Recorded like a fault, so ``labkit gc`` unmounts it after the process that made it is gone;
    :func:`remove_small_disk` unmounts it at once (stop the cluster first)."""
    j = Journal("small-disk", size)
    where = paths.state_dir() / "chaos-disks" / j.id
    where.mkdir(parents=True, exist_ok=True)
    j.add("unmount", path=str(where))
    import subprocess

    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", DISK, str(where)],
                         capture_output=True, text=True, timeout=20)
    if res.returncode != 0:
        j.undo()
        raise ChaosError(f"cannot mount a {size} tmpfs at {where}: {res.stderr.strip()} (it needs root)")
    (where / ".journal").write_text(str(j.path))
    return where


def remove_small_disk(where: str | os.PathLike) -> None:
    """Unmount a :func:`small_disk` (its cluster must be stopped) and forget its record."""
    record = Path(where) / ".journal"
    if record.exists():
        problems = Journal.load(Path(record.read_text())).undo()
        if problems:
            raise ChaosError("; ".join(problems))


def _store_file(store: str) -> Path | None:
    if store.startswith("sqlite:"):
        return Path(store[len("sqlite:"):].split("?", 1)[0])
    return None


def _filesystem(path: Path) -> tuple[str, str, str]:
    """(mount point, type, source) of the filesystem holding ``path``."""
    best = ("/", "?", "?")
    real = str(path.resolve())
    for line in Path("/proc/mounts").read_text().splitlines():
        f = line.split()
        if len(f) > 2 and (real == f[1] or real.startswith(f[1].rstrip("/") + "/")) and len(f[1]) >= len(best[0]):
            best = (f[1], f[2], f[0])
    return best


class StoreDiskFull(Fault):
    action = "store-disk-full"
    target_help = "store (the cluster's store; it must live on a small tmpfs, see labkit.chaos.small_disk)"

    def inject(self) -> None:
        store = self.cluster.store
        f = _store_file(store) if store.startswith("sqlite:") else None
        if f is None:
            if store == "sqlite":  # the cluster's own folder
                f = self.cluster.dir / "store.db"
            else:
                raise ChaosError(f"store-disk-full fills the disk under a sqlite store; cluster {self.cluster.name} "
                                 f"keeps its objects in {store!r}" + (" (in memory: there is no disk to fill)"
                                                                      if store == "memory" else ""))
        mount, fstype, source = _filesystem(f)
        st = os.statvfs(f.parent)
        size = st.f_blocks * st.f_frsize
        if source != DISK or size > MAX_FILL:
            raise ChaosError(f"the store {f} is on {mount} ({fstype}, {size >> 20} MiB): only a small tmpfs from "
                             "labkit.chaos.small_disk is filled, never a disk others use. Start the cluster with its store on a small tmpfs: "
                             "disk = labkit.chaos.small_disk('16m'); Cluster(store=f'sqlite:{disk}/store.db')")
        _shrink_wal(f)
        ballast = f.parent / f"chaos-ballast-{self.journal.id}"
        self.journal.add("remove-file", path=str(ballast))
        filled = _fill(ballast)
        self.say(f"filled {mount} ({size >> 20} MiB tmpfs under the store) with a {filled >> 20} MiB ballast file: "
                 f"{os.statvfs(f.parent).f_bavail * st.f_frsize} bytes left")

    def recover(self) -> None:
        self.say("ballast removed: the store has room again")


def _shrink_wal(db: Path) -> None:
    """Checkpoint the store's write-ahead log and truncate it, as any process sharing the file may.

    Otherwise SQLite goes on writing into the room its log file already has, and the full disk
    shows only some hundreds of writes later."""
    import sqlite3

    try:
        conn = sqlite3.connect(str(db), timeout=5.0)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    except sqlite3.Error:
        pass  # busy: the disk fills all the same, a little later


def _fill(path: Path) -> int:
    """Write ``path`` until the filesystem has no room left; how many bytes went in."""
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in (1 << 20, 1 << 12, 1):
            block = b"\0" * chunk
            while True:
                try:
                    n = os.write(fd, block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
                written += n
                if n < chunk:
                    break
    finally:
        os.close(fd)
    return written
