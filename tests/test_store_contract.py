"""One behaviour, three backends: memory, sqlite and real etcd pass the same tests."""

from __future__ import annotations

import threading

import pytest
from support.store import Collector, etcd_available, running_etcd

from labkit.controlplane.store import (
    Compacted,
    Conflict,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    Store,
    open_store,
)

BACKENDS = ["memory", "sqlite", "etcd"]


@pytest.fixture(scope="module")
def etcd_url():
    if not etcd_available():
        pytest.skip("no etcd binary (apt-get install etcd-server)")
    with running_etcd() as cluster:
        yield cluster.url


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path) -> Store:
    if request.param == "memory":
        s = open_store("memory")
    elif request.param == "sqlite":
        s = open_store(f"sqlite:{tmp_path / 'store.db'}")
    else:
        s = open_store(request.getfixturevalue("etcd_url"))
    # etcd is shared by the module's tests: give each test its own key space
    s.test_prefix = f"/t/{request.node.name.replace('[', '-').rstrip(']')}/"
    yield s
    s.close()


def k(store: Store, name: str) -> str:
    return store.test_prefix + name


def test_create_get_and_revisions(store):
    before = store.revision
    kv = store.create(k(store, "a"), b"one")
    assert kv.value == b"one"
    assert kv.create_revision == kv.mod_revision == store.revision > before
    assert kv.version == 1
    got = store.get(k(store, "a"))
    assert got == kv
    assert store.get(k(store, "missing")) is None


def test_create_twice_is_refused(store):
    store.create(k(store, "a"), b"1")
    with pytest.raises(KeyExists):
        store.create(k(store, "a"), b"2")
    assert store.get(k(store, "a")).value == b"1"


def test_update_is_compare_and_swap(store):
    a = store.create(k(store, "a"), b"1")
    b = store.update(k(store, "a"), b"2", expected_mod_revision=a.mod_revision)
    assert b.mod_revision > a.mod_revision
    assert b.create_revision == a.create_revision
    assert b.version == 2
    with pytest.raises(Conflict):
        store.update(k(store, "a"), b"stale", expected_mod_revision=a.mod_revision)
    assert store.get(k(store, "a")).value == b"2"
    c = store.update(k(store, "a"), b"3")  # unconditional
    assert c.version == 3 and c.value == b"3"
    with pytest.raises(KeyNotFound):
        store.update(k(store, "nope"), b"x")


def test_concurrent_writers_one_wins(store):
    a = store.create(k(store, "race"), b"0")
    wins, conflicts = [], []

    def writer(i):
        try:
            wins.append(store.update(k(store, "race"), str(i).encode(), a.mod_revision))
        except Conflict:
            conflicts.append(i)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(conflicts) == 7
    assert store.get(k(store, "race")).value == wins[0].value


def test_delete(store):
    a = store.create(k(store, "a"), b"1")
    with pytest.raises(Conflict):
        store.delete(k(store, "a"), expected_mod_revision=a.mod_revision + 100)
    gone = store.delete(k(store, "a"), expected_mod_revision=a.mod_revision)
    assert gone.value == b"1"
    assert store.get(k(store, "a")) is None
    with pytest.raises(KeyNotFound):
        store.delete(k(store, "a"))
    again = store.create(k(store, "a"), b"new life")
    assert again.version == 1 and again.create_revision > a.create_revision


def test_list_prefix_limit_and_continue(store):
    for name in ["p/c", "p/a", "p/b", "q/x", "p/d", "p/e"]:
        store.create(k(store, name), name.encode())
    items, rev = store.list(k(store, "p/"))
    assert [i.key for i in items] == [k(store, f"p/{c}") for c in "abcde"]
    assert rev == store.revision
    page1, rev1 = store.list(k(store, "p/"), limit=2)
    assert [i.value for i in page1] == [b"p/a", b"p/b"]
    store.create(k(store, "p/bb"), b"late")  # written between pages: not in the snapshot
    page2, _ = store.list(k(store, "p/"), revision=rev1, limit=2, start_after=page1[-1].key)
    assert [i.value for i in page2] == [b"p/c", b"p/d"]
    page3, _ = store.list(k(store, "p/"), revision=rev1, limit=2, start_after=page2[-1].key)
    assert [i.value for i in page3] == [b"p/e"]
    assert store.list(k(store, "zzz/"))[0] == []


def test_reads_at_an_old_revision(store):
    a = store.create(k(store, "a"), b"v1")
    store.update(k(store, "a"), b"v2")
    store.create(k(store, "b"), b"b")
    store.delete(k(store, "a"))
    assert store.get(k(store, "a"), revision=a.mod_revision).value == b"v1"
    items, _ = store.list(k(store, ""), revision=a.mod_revision)
    assert [(i.key, i.value) for i in items] == [(k(store, "a"), b"v1")]
    assert [i.key for i in store.list(k(store, ""))[0]] == [k(store, "b")]


def test_watch_from_a_revision_in_order_with_deletes(store):
    start = store.revision + 1
    a = store.create(k(store, "a"), b"1")
    store.update(k(store, "a"), b"2", a.mod_revision)
    store.create(k(store, "other/b"), b"b")
    store.delete(k(store, "a"))
    store.create(store.test_prefix.rstrip("/") + "-outside", b"not mine")
    got = Collector()
    w = store.watch(store.test_prefix, start, got)
    try:
        store.create(k(store, "live"), b"L")
        events = got.wait_for(5)
        assert [(e.type, e.kv.key[len(store.test_prefix):], e.kv.value) for e in events] == [
            ("PUT", "a", b"1"), ("PUT", "a", b"2"), ("PUT", "other/b", b"b"),
            ("DELETE", "a", b"2"), ("PUT", "live", b"L")]
        revs = [e.revision for e in events]
        assert revs == sorted(revs) and revs[0] == a.mod_revision
        delete = events[3]
        assert delete.prev_kv is not None and delete.prev_kv.value == b"2"
        assert events[1].prev_kv.value == b"1"
        assert events[0].prev_kv is None
    finally:
        w.cancel()


def test_watch_filters_by_prefix_and_starts_now(store):
    got = Collector()
    w = store.watch(k(store, "only/"), 0, got)
    try:
        store.create(k(store, "elsewhere"), b"no")
        store.create(k(store, "only/yes"), b"yes")
        events = got.wait_for(1)
        assert [e.kv.value for e in events] == [b"yes"]
    finally:
        w.cancel()


def test_watch_batches_cover_a_burst(store):
    got = Collector()
    w = store.watch(k(store, "burst/"), store.revision + 1, got)
    try:
        for i in range(50):
            store.create(k(store, f"burst/{i:03d}"), b"x")
        events = got.wait_for(50)
        assert [e.kv.key for e in events] == [k(store, f"burst/{i:03d}") for i in range(50)]
    finally:
        w.cancel()


def test_cancelled_watch_gets_nothing_more(store):
    got = Collector()
    w = store.watch(k(store, ""), 0, got)
    store.create(k(store, "one"), b"1")
    got.wait_for(1)
    w.cancel()
    store.create(k(store, "two"), b"2")
    marker = Collector()
    w2 = store.watch(k(store, "two"), 0, marker)
    store.update(k(store, "two"), b"2b")
    marker.wait_for(1)
    w2.cancel()
    assert [e.kv.value for e in got.events] == [b"1"]


def test_compaction(store):
    a = store.create(k(store, "a"), b"1")
    store.update(k(store, "a"), b"2")
    store.create(k(store, "gone"), b"g")
    store.delete(k(store, "gone"))
    floor = store.update(k(store, "a"), b"3").mod_revision
    store.compact(floor)
    assert store.compact_revision >= floor
    with pytest.raises(Compacted):
        store.get(k(store, "a"), revision=a.mod_revision)
    with pytest.raises(Compacted):
        store.list(k(store, ""), revision=a.mod_revision)
    with pytest.raises(Compacted):
        store.watch(k(store, ""), a.mod_revision, Collector())
    # the state at and after the floor is intact
    assert store.get(k(store, "a"), revision=floor).value == b"3"
    assert [i.key for i in store.list(k(store, ""), revision=floor)[0]] == [k(store, "a")]
    store.compact(floor)  # again: no-op
    got = Collector()
    w = store.watch(k(store, ""), floor, got)
    try:
        store.create(k(store, "b"), b"b")
        assert [e.kv.value for e in got.wait_for(2)] == [b"3", b"b"]
    finally:
        w.cancel()
    # after compaction the key lives on and can be updated and deleted as before
    cur = store.get(k(store, "a"))
    store.update(k(store, "a"), b"4", cur.mod_revision)
    store.delete(k(store, "a"))
    store.create(k(store, "gone"), b"back")
    assert store.get(k(store, "gone")).version == 1


def test_values_are_bytes_kept_exactly(store):
    blob = bytes(range(256)) * 10
    store.create(k(store, "bin"), blob)
    assert store.get(k(store, "bin")).value == blob
    store.create(k(store, "ünï/cödé"), b"ok")
    assert store.list(k(store, "ünï/"))[0][0].value == b"ok"


def test_list_then_watch_misses_nothing(store):
    """The informer pattern: list at revision R, then watch from R + 1."""
    for i in range(3):
        store.create(k(store, f"i/{i}"), b"before")
    items, rev = store.list(k(store, "i/"))
    store.create(k(store, "i/3"), b"after")
    store.update(k(store, "i/0"), b"changed")
    got = Collector()
    w = store.watch(k(store, "i/"), rev + 1, got)
    try:
        events = got.wait_for(2)
        assert len(items) == 3
        assert [(e.kv.key[-1], e.kv.value) for e in events] == [("3", b"after"), ("0", b"changed")]
    finally:
        w.cancel()


def test_reading_the_future_is_an_error(store):
    with pytest.raises(FutureRevision):
        store.get(k(store, "a"), revision=store.revision + 1000)
