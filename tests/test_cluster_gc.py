"""``labkit gc`` also removes the folder a killed notebook cluster left, never a ``cluster up`` cluster's."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from labkit.runtime import gc


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def cluster_folder(state, name: str, keep_state: bool) -> None:
    folder = state / "clusters" / name
    (folder / "logs").mkdir(parents=True)
    (folder / "store.db").write_bytes(b"objects")
    pid = dead_pid()
    (folder / "cluster.json").write_text(json.dumps({
        "name": name, "keep_state": keep_state, "owner_pid": pid,
        "components": {"apiserver": {"pid": pid, "cmd": ["python"], "log": str(folder / "logs" / "a.log")}}}))


def test_gc_removes_a_killed_notebook_clusters_folder_and_keeps_a_cluster_up_store(tmp_path, monkeypatch):
    state = tmp_path / "labkit-state"
    monkeypatch.setenv("LABKIT_STATE", str(state))
    cluster_folder(state, "lk-1-abc", keep_state=False)  # Cluster() in a notebook that was killed
    cluster_folder(state, "default", keep_state=True)  # labkit cluster up: its store is the user's
    found = [x.what for x in gc.find_leaks(("clusters",))]
    assert found == [str(state / "clusters" / "lk-1-abc")]

    assert gc.collect(("clusters",)) == []
    assert not (state / "clusters" / "lk-1-abc").exists()
    assert (state / "clusters" / "default" / "store.db").read_bytes() == b"objects"


def test_a_notebook_cluster_whose_owner_still_runs_is_not_a_leftover(tmp_path, monkeypatch):
    state = tmp_path / "labkit-state"
    monkeypatch.setenv("LABKIT_STATE", str(state))
    cluster_folder(state, "lk-2-def", keep_state=False)
    info = state / "clusters" / "lk-2-def" / "cluster.json"
    info.write_text(json.dumps({**json.loads(info.read_text()), "owner_pid": os.getpid()}))
    assert gc.find_leaks(("clusters",)) == []
