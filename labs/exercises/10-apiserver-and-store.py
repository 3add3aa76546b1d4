"""Lab 10's exercises: the apiserver keeps nothing; the store keeps everything.

The learner runs labkit's apiserver on a SQLite store file in the lab's exercise folder
(``~/labkit-exercises/10``). Each check reads that file twice: with SQLite itself (the store's
revision log, row by row) and through a *fresh* apiserver that it starts on the file, i.e. after
a restart, with the official Kubernetes client.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from labkit.practice import Exercise, Target, Verdict

CM = "/registry/configmaps/default/"


def _db(t: Target, name: str) -> Path:
    return t.workdir / name


def _missing(path: Path) -> str:
    return (f"there is no store file {path} yet: start an apiserver with "
            f"APIServer('sqlite:{path}') and write through it")


@contextlib.contextmanager
def _fresh_apiserver(path: Path) -> Iterator[tuple[Any, Any]]:
    """A new apiserver on the learner's store file (a restart, as far as the data knows)."""
    from kubernetes import client

    from labkit.controlplane.apiserver import APIServer

    api = APIServer(f"sqlite:{path}").start()
    try:
        cfg = client.Configuration()
        cfg.host = api.url
        yield api, client.CoreV1Api(client.ApiClient(cfg))
    finally:
        api.stop()


def _rows(path: Path, key: str) -> list[tuple[int, int, int, int]]:
    """The store's own log for ``key``: (revision, created, deleted, create_revision) per row, oldest
    first (a created row's own revision is its create_revision, stored as 0)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT id, created, deleted, CASE WHEN create_revision = 0 THEN id ELSE create_revision END "
                            "FROM kine WHERE name = ? ORDER BY id", (key,)).fetchall()
    finally:
        conn.close()


def _read_cm(core: Any, name: str) -> Any:
    from kubernetes.client.rest import ApiException

    try:
        return core.read_namespaced_config_map(name, "default")
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _solve_with(path: Path, steps: Any) -> None:
    from kubernetes import client

    from labkit.controlplane.apiserver import APIServer

    path.parent.mkdir(parents=True, exist_ok=True)
    with APIServer(f"sqlite:{path}") as api:
        cfg = client.Configuration()
        cfg.host = api.url
        steps(api, client.CoreV1Api(client.ApiClient(cfg)))


# ---- 10.1: data that survives the apiserver -----------------------------------------------------
def _verify_survive(t: Target) -> Verdict:
    path = _db(t, "survive.db")
    if not path.exists():
        return Verdict.not_yet(_missing(path))
    with _fresh_apiserver(path) as (_api, core):
        cm = _read_cm(core, "settings")
    if cm is None:
        return Verdict.not_yet(f"a fresh apiserver on {path.name} finds no ConfigMap 'settings' in 'default'")
    if (cm.data or {}).get("color") != "blue":
        return Verdict.not_yet(f"ConfigMap 'settings' holds {cm.data}; it must have color: blue")
    return Verdict.ok(f"a new apiserver on {path.name} reads ConfigMap settings (uid {cm.metadata.uid}, "
                      f"resourceVersion {cm.metadata.resource_version}) with color=blue: the data lives in the store")


def _solve_survive(t: Target) -> None:
    _solve_with(_db(t, "survive.db"), lambda api, core: core.create_namespaced_config_map(
        "default", {"metadata": {"name": "settings"}, "data": {"color": "blue"}}))


# ---- 10.2: every write is a new revision ------------------------------------------------------
def _verify_history(t: Target) -> Verdict:
    path = _db(t, "history.db")
    if not path.exists():
        return Verdict.not_yet(_missing(path))
    rows = _rows(path, CM + "counter")
    if not rows:
        return Verdict.not_yet(f"{path.name} holds no row for {CM}counter: create the ConfigMap 'counter'")
    if rows[-1][2]:
        return Verdict.not_yet("the last row for 'counter' is a delete; leave the ConfigMap in place")
    if len(rows) < 4:
        return Verdict.not_yet(f"the store's log holds {len(rows)} row(s) for 'counter' (revisions "
                               f"{[r[0] for r in rows]}); create it, then change it three times")
    with _fresh_apiserver(path) as (_api, core):
        cm = _read_cm(core, "counter")
    if cm is None or int(cm.metadata.resource_version) != rows[-1][0]:
        return Verdict.not_yet(f"the API's resourceVersion ({cm and cm.metadata.resource_version}) is not the "
                               f"store's newest row ({rows[-1][0]})")
    return Verdict.ok(f"{len(rows)} rows for 'counter' at revisions {[r[0] for r in rows]}; the API's "
                      f"resourceVersion {cm.metadata.resource_version} is the newest row's revision")


def _solve_history(t: Target) -> None:
    def steps(api: Any, core: Any) -> None:
        core.create_namespaced_config_map("default", {"metadata": {"name": "counter"}, "data": {"n": "0"}})
        for i in range(1, 4):
            core.patch_namespaced_config_map("counter", "default", {"data": {"n": str(i)}})

    _solve_with(_db(t, "history.db"), steps)


# ---- 10.3: compaction ----------------------------------------------------------------------------
def _verify_compact(t: Target) -> Verdict:
    from labkit.controlplane.store import Compacted, open_store

    path = _db(t, "compact.db")
    if not path.exists():
        return Verdict.not_yet(_missing(path))
    rows = _rows(path, CM + "old")
    if not rows:
        return Verdict.not_yet(f"{path.name} holds no ConfigMap 'old' yet")
    first = rows[-1][3]  # where 'old' began; compaction may have removed that row already
    store = open_store(f"sqlite:{path}")
    try:
        floor = store.compact_revision
        if floor <= first:
            return Verdict.not_yet(f"the store is compacted up to revision {floor}, and 'old' was created at "
                                   f"{first}: change 'old', then compact at the newest revision")
        try:
            store.get(CM + "old", revision=first)
            return Verdict.not_yet(f"the store still answers a read of 'old' at revision {first}")
        except Compacted as exc:
            refused = str(exc)
    finally:
        store.close()
    with _fresh_apiserver(path) as (_api, core):
        cm = _read_cm(core, "old")
    if cm is None:
        return Verdict.not_yet("ConfigMap 'old' is gone: compaction drops old versions, not the current one; "
                               "do not delete it")
    return Verdict.ok(f"compacted at {floor}: the store refuses 'old' as it was at revision {first} ({refused}); "
                      f"'old' still reads through a new apiserver at resourceVersion {cm.metadata.resource_version}")


def _solve_compact(t: Target) -> None:
    def steps(api: Any, core: Any) -> None:
        core.create_namespaced_config_map("default", {"metadata": {"name": "old"}, "data": {"v": "1"}})
        core.patch_namespaced_config_map("old", "default", {"data": {"v": "2"}})
        api.compact()

    _solve_with(_db(t, "compact.db"), steps)


STARTER = """```python
from pathlib import Path
from labkit.controlplane.apiserver import APIServer
from kubernetes import client

folder = Path.home() / "labkit-exercises" / "10"
folder.mkdir(parents=True, exist_ok=True)
api = APIServer(f"sqlite:{folder / '%s'}").start()
cfg = client.Configuration(); cfg.host = api.url
core = client.CoreV1Api(client.ApiClient(cfg))
```"""

EXERCISES = [
    Exercise(
        id="10.1",
        title="Data that outlives the apiserver",
        statement="""Start an apiserver on a SQLite store in the exercise folder, `survive.db` (below), and
create a ConfigMap `settings` in `default` with `color: blue`. Stop the apiserver. The check starts
a **new** apiserver on the same file and reads the ConfigMap through the Kubernetes API.

""" + STARTER % "survive.db",
        verify=_verify_survive,
        solution=_solve_survive,
        solution_text="""```python
core.create_namespaced_config_map("default", {"metadata": {"name": "settings"}, "data": {"color": "blue"}})
api.stop()
```""",
        concept="the apiserver is stateless",
        difficulty="easy",
    ),
    Exercise(
        id="10.2",
        title="Every write is a new revision",
        statement="""On a store `history.db` (start an apiserver as in 10.1), create a ConfigMap `counter`
and then change it three times. The check reads the store's table with SQLite itself: each write
must be its own row, and the newest row's number must be the `resourceVersion` the API reports.""",
        verify=_verify_history,
        solution=_solve_history,
        solution_text="""```python
core.create_namespaced_config_map("default", {"metadata": {"name": "counter"}, "data": {"n": "0"}})
for i in range(1, 4):
    core.patch_namespaced_config_map("counter", "default", {"data": {"n": str(i)}})
api.stop()
```""",
        concept="resourceVersion is the store's revision",
        difficulty="medium",
    ),
    Exercise(
        id="10.3",
        title="Compact the history away",
        statement="""On a store `compact.db`, create a ConfigMap `old`, change it once, and then compact the
store at its newest revision (`api.compact()`). The check opens the file as a store and asks for
`old` as it was when it was created: that version must be gone (a watch that would have to start
below the compacted revision is what the API answers with 410 Gone), while a new apiserver on the
file still reads the current `old`.""",
        verify=_verify_compact,
        solution=_solve_compact,
        solution_text="""```python
core.create_namespaced_config_map("default", {"metadata": {"name": "old"}, "data": {"v": "1"}})
core.patch_namespaced_config_map("old", "default", {"data": {"v": "2"}})
api.compact()
api.stop()
```""",
        concept="compaction and 410 Gone",
        difficulty="hard",
    ),
]
