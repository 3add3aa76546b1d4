"""Group commit in the sqlite store, callbacks that run on the writer's thread, and create_async.

What a user of the store notices: many writers at once all get acknowledged, each with its own
revision, every watcher sees every write in order, and an acknowledged write is on disk - also
when it was queued with ``create_async`` and the process is then killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest
from support.store import Collector

from labkit.controlplane.store import KeyExists, StoreError, open_store
from labkit.controlplane.store.fanout import NonBlocking


def test_concurrent_writers_all_acknowledged_in_one_order(tmp_path):
    store = open_store(f"sqlite:{tmp_path / 'gc.db'}")
    got = Collector()
    w = store.watch("/gc/", 0, got)
    revisions: list[int] = []
    lock = threading.Lock()

    def writer(t: int) -> None:
        for i in range(40):
            kv = store.create(f"/gc/w{t}-{i}", b"v")
            with lock:
                revisions.append(kv.mod_revision)

    try:
        threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        assert len(revisions) == 320
        assert len(set(revisions)) == 320  # every write has its own revision
        events = got.wait_for(320)
        assert [e.revision for e in events] == sorted(revisions)  # watchers see them in revision order
        items, rev = store.list("/gc/")
        assert len(items) == 320 and rev == max(revisions)
    finally:
        w.cancel()
        store.close()


def test_a_failing_write_does_not_fail_the_others_in_its_commit(tmp_path):
    store = open_store(f"sqlite:{tmp_path / 'gc.db'}")
    store.create("/gc/taken", b"first")
    outcomes: list[str] = []
    lock = threading.Lock()

    def writer(key: str) -> None:
        try:
            store.create(key, b"v")
            result = "ok"
        except KeyExists:
            result = "exists"
        with lock:
            outcomes.append(result)

    try:
        keys = ["/gc/taken"] * 4 + [f"/gc/free-{i}" for i in range(12)]
        threads = [threading.Thread(target=writer, args=(k,)) for k in keys]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        assert sorted(outcomes) == ["exists"] * 4 + ["ok"] * 12
        assert store.get("/gc/taken").value == b"first"
    finally:
        store.close()


def test_nonblocking_callback_runs_on_the_writer_thread_in_order(tmp_path):
    store = open_store(f"sqlite:{tmp_path / 'nb.db'}")
    seen: list[tuple[int, str]] = []

    def callback(events):
        seen.extend((e.revision, threading.current_thread().name) for e in events)

    w = store.watch("/nb/", 0, NonBlocking(callback))
    try:
        revs = [store.create(f"/nb/{i}", b"v").mod_revision for i in range(5)]
        # delivered before create() returned, by the thread that wrote
        assert seen == [(r, threading.current_thread().name) for r in revs]
        w.cancel()
        store.create("/nb/after-cancel", b"v")
        assert len(seen) == 5
    finally:
        store.close()


def test_a_broken_nonblocking_callback_does_not_fail_the_write(tmp_path):
    store = open_store(f"sqlite:{tmp_path / 'nb.db'}")

    def broken(events):
        raise RuntimeError("callback bug")

    w = store.watch("/nb/", 0, NonBlocking(broken))
    try:
        kv = store.create("/nb/x", b"v")
        assert store.get("/nb/x").mod_revision == kv.mod_revision
    finally:
        w.cancel()
        store.close()


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_nonblocking_watch_replays_history_then_follows(tmp_path, backend):
    store = open_store("memory" if backend == "memory" else f"sqlite:{tmp_path / 'nb.db'}")
    try:
        first = store.create("/nb/a", b"1")
        store.update("/nb/a", b"2", first.mod_revision)
        got = Collector()
        w = store.watch("/nb/", first.mod_revision, NonBlocking(got))
        store.delete("/nb/a")
        events = got.wait_for(3)
        assert [e.type for e in events] == ["PUT", "PUT", "DELETE"]
        w.cancel()
    finally:
        store.close()


def _wait_all(done: threading.Event, results: list, n: int) -> None:
    assert done.wait(30), f"only {len(results)} of {n} create_async callbacks came"


def test_create_async_calls_back_once_committed(tmp_path):
    store = open_store(f"sqlite:{tmp_path / 'ca.db'}")
    results: list = []
    done = threading.Event()
    n = 50

    def on_done(kv, err):
        results.append((kv, err))
        if len(results) == n:
            done.set()

    try:
        store.create("/ca/taken", b"first")
        for i in range(n - 1):
            store.create_async(f"/ca/{i}", b"v", on_done)
        store.create_async("/ca/taken", b"second", on_done)
        _wait_all(done, results, n)
        oks = [kv for kv, err in results if err is None]
        errs = [err for kv, err in results if err is not None]
        assert len(oks) == n - 1 and len({kv.mod_revision for kv in oks}) == n - 1
        assert len(errs) == 1 and isinstance(errs[0], KeyExists)
        for kv in oks:  # readable once acknowledged
            assert store.get(kv.key).mod_revision == kv.mod_revision
    finally:
        store.close()


def test_create_async_mixed_with_waiting_writers(tmp_path):
    store = open_store(f"sqlite:{tmp_path / 'ca.db'}")
    results: list = []
    done = threading.Event()

    def on_done(kv, err):
        results.append(err)
        if len(results) == 100:
            done.set()

    def sync_writer(t: int) -> None:
        for i in range(25):
            store.create(f"/mix/s{t}-{i}", b"v")

    try:
        threads = [threading.Thread(target=sync_writer, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for i in range(100):
            store.create_async(f"/mix/a{i}", b"v", on_done)
        for th in threads:
            th.join(30)
        _wait_all(done, results, 100)
        assert results == [None] * 100
        items, _ = store.list("/mix/")
        assert len(items) == 200
    finally:
        store.close()


def test_create_async_on_a_closed_store_reports_an_error(tmp_path):
    store = open_store(f"sqlite:{tmp_path / 'ca.db'}")
    store.create_async("/ca/one", b"v", lambda kv, err: None)  # starts the committer thread
    store.close()
    results: list = []
    done = threading.Event()

    def on_done(kv, err):
        results.append(err)
        done.set()

    store.create_async("/ca/late", b"v", on_done)
    _wait_all(done, results, 1)
    assert isinstance(results[0], StoreError)


ASYNC_WRITER = textwrap.dedent("""
    import sys, threading
    from labkit.controlplane.store import open_store
    store = open_store("sqlite:" + sys.argv[1])
    out = threading.Lock()
    more = threading.Semaphore(64)  # at most 64 creates queued at a time

    def on_done(kv, err):
        if err is None:
            with out:  # printed only after the commit holding the create reached the disk
                sys.stdout.write(kv.key + "\\n")
                sys.stdout.flush()
        more.release()

    i = 0
    while True:
        more.acquire()
        store.create_async(f"/registry/configmaps/default/a{i}", b"v", on_done)
        i += 1
""")


def test_every_create_async_acknowledged_survives_kill_9(tmp_path):
    db = tmp_path / "kill.db"
    child = subprocess.Popen([sys.executable, "-c", ASYNC_WRITER, str(db)], stdout=subprocess.PIPE, text=True)
    acked = []
    try:
        for line in child.stdout:
            acked.append(line.strip())
            if len(acked) >= 400:
                os.kill(child.pid, signal.SIGKILL)  # mid-stream: commits are in flight right now
                break
    finally:
        child.kill()
        rest, _ = child.communicate()
    acked += [line for line in rest.splitlines() if line.strip()]
    assert child.returncode == -signal.SIGKILL
    assert len(acked) >= 400
    store = open_store(f"sqlite:{db}")
    try:
        items, _ = store.list("/registry/configmaps/")
        have = {kv.key for kv in items}
        missing = [k for k in acked if k not in have]
        assert missing == [], f"{len(missing)} acknowledged creates lost after kill -9"
    finally:
        store.close()
