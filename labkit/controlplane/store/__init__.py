"""The store under the apiserver: where the cluster's state lives.

``open_store(url)`` picks a backend by URL:

* ``memory`` - everything in this process; gone when it ends.
* ``sqlite`` or ``sqlite:PATH`` - the embedded default, one append-only log table in the manner
  of k3s's kine; ``sqlite`` alone means ``<labkit data dir>/store.db``. ``?sync=normal`` trades
  power-cut safety for speed (the default ``sync=full`` fsyncs every commit).
* ``etcd:http://127.0.0.1:2379[,http://...]`` - real etcd v3 through its JSON gateway; every
  member URL is tried in turn. ``etcd`` alone means ``http://127.0.0.1:2379``, as for etcdctl.
"""

from __future__ import annotations

from pathlib import Path

from labkit.controlplane.store.base import (
    Compacted,
    Conflict,
    Event,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    KeyValue,
    NoSpace,
    Store,
    StoreError,
    Unavailable,
    Watch,
)

__all__ = [
    "Compacted", "Conflict", "Event", "FutureRevision", "KeyExists", "KeyNotFound", "KeyValue", "NoSpace",
    "Store", "StoreError", "Unavailable", "Watch", "open_store", "BACKENDS",
]

BACKENDS = ("memory", "sqlite", "etcd")


def open_store(url: str = "sqlite") -> Store:
    """Open a store from a URL such as ``memory``, ``sqlite:/tmp/s.db`` or ``etcd:http://127.0.0.1:2379``."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("store URL is empty: use 'memory', 'sqlite[:PATH]' or 'etcd:http://HOST:PORT'")
    url = url.strip()
    scheme, _, rest = url.partition(":")
    scheme = scheme.lower()
    if scheme == "memory":
        if rest:
            raise ValueError(f"store URL {url!r}: 'memory' takes no path")
        from labkit.controlplane.store.memory import MemoryStore

        return MemoryStore()
    if scheme == "sqlite":
        from labkit.controlplane.store.sqlite import SqliteStore

        if rest.startswith("//"):  # tolerate sqlite:///abs/path
            rest = rest[2:]
        rest, _, query = rest.partition("?")
        options = dict(p.partition("=")[::2] for p in query.split("&") if p)
        unknown = set(options) - {"sync"}
        if unknown:
            raise ValueError(f"store URL {url!r}: unknown option(s) {sorted(unknown)}; the only one is sync=full|normal")
        sync = options.get("sync", "full")
        if not rest:
            from labkit.paths import data_dir

            return SqliteStore(data_dir() / "store.db", sync)
        return SqliteStore(Path(rest).expanduser(), sync)
    if scheme == "etcd":
        from labkit.controlplane.store.etcd import EtcdStore

        if url.lower() == "etcd":  # like etcdctl: the well-known local client port
            return EtcdStore(["http://127.0.0.1:2379"])
        endpoints = [e.strip() for e in rest.split(",") if e.strip()]
        if not endpoints:
            raise ValueError(f"store URL {url!r} names no etcd member: "
                             "use 'etcd:http://127.0.0.1:2379[,http://127.0.0.1:22379]'")
        return EtcdStore(endpoints)
    raise ValueError(f"unknown store {url!r}: use 'memory', 'sqlite[:PATH]' or 'etcd:http://HOST:PORT[,...]'")
