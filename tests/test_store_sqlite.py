"""The sqlite store's own promises: acknowledged writes survive kill -9; processes share a file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from support.store import Collector

from labkit.controlplane.store import open_store

WRITER = textwrap.dedent("""
    import sys, threading
    from labkit.controlplane.store import open_store
    store = open_store("sqlite:" + sys.argv[1] + "?sync=" + sys.argv[2])
    out = threading.Lock()

    def writer(t):
        i = 0
        while True:
            key = f"/registry/pods/default/w{t}-{i}"
            store.create(key, key.encode())
            with out:  # printed only after the write was acknowledged
                sys.stdout.write(key + "\\n")
                sys.stdout.flush()
            i += 1

    for t in range(4):
        threading.Thread(target=writer, args=(t,), daemon=True).start()
    threading.Event().wait()
""")


@pytest.mark.parametrize("sync", ["full", "normal"])
def test_every_acknowledged_write_survives_kill_9(tmp_path, sync):
    db = tmp_path / "kill.db"
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(db), sync], stdout=subprocess.PIPE, text=True)
    acked = []
    try:
        for line in child.stdout:
            acked.append(line.strip())
            if len(acked) >= 400:
                os.kill(child.pid, signal.SIGKILL)  # mid-stream: writers are busy right now
                break
    finally:
        child.kill()
        rest, _ = child.communicate()
    acked += [line for line in rest.splitlines() if line.strip()]
    assert child.returncode == -signal.SIGKILL
    assert len(acked) >= 400

    store = open_store(f"sqlite:{db}")
    try:
        items, _ = store.list("/registry/pods/")
        have = {kv.key: kv.value for kv in items}
        missing = [k for k in acked if have.get(k) != k.encode()]
        assert missing == [], f"{len(missing)} acknowledged writes lost after kill -9"
        store.create("/registry/pods/default/after", b"still writable")
    finally:
        store.close()


def test_two_stores_on_one_file_see_each_other(tmp_path):
    db = tmp_path / "shared.db"
    a = open_store(f"sqlite:{db}")
    b = open_store(f"sqlite:{db}")
    got = Collector()
    w = b.watch("/x/", 0, got)
    try:
        a.create("/x/1", b"from a")
        kv = b.get("/x/1")
        assert kv is not None and kv.value == b"from a"
        events = got.wait_for(1)  # b learns of a's write by polling the log
        assert events[0].kv.value == b"from a"
        b.update("/x/1", b"from b", kv.mod_revision)
        assert a.get("/x/1").value == b"from b"
        assert a.revision == b.revision
    finally:
        w.cancel()
        a.close()
        b.close()


def test_state_survives_reopening(tmp_path):
    db = tmp_path / "reopen.db"
    s = open_store(f"sqlite:{db}")
    kv = s.create("/registry/configmaps/default/c", b"data")
    s.close()
    s = open_store(f"sqlite:{db}")
    try:
        assert s.get("/registry/configmaps/default/c") == kv
        assert s.revision == kv.mod_revision
        assert s.create("/registry/configmaps/default/d", b"next").mod_revision == kv.mod_revision + 1
    finally:
        s.close()


def test_log_is_append_only_and_compaction_trims_it(tmp_path):
    import sqlite3

    db = tmp_path / "log.db"
    s = open_store(f"sqlite:{db}")
    kv = s.create("/k", b"1")
    for i in range(5):
        kv = s.update("/k", str(i).encode(), kv.mod_revision)
    rows = lambda: sqlite3.connect(db).execute("SELECT COUNT(*) FROM kine").fetchone()[0]  # noqa: E731
    assert rows() == 6
    s.compact(kv.mod_revision)
    assert rows() == 1
    s.close()
