"""open_store(url): every backend by URL, and bad URLs get an error that says what to write."""

from __future__ import annotations

import pytest

from labkit.controlplane.store import open_store


def test_memory_and_sqlite_urls(tmp_path):
    assert open_store("memory").name == "memory"
    s = open_store(f"sqlite:{tmp_path / 'a.db'}")
    assert s.name == "sqlite" and s.synchronous == "FULL"
    s.close()
    s = open_store(f"sqlite://{tmp_path / 'b.db'}?sync=normal")
    assert s.synchronous == "NORMAL" and s.path == tmp_path / "b.db"
    s.close()


def test_default_sqlite_lives_in_the_labkit_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_DATA", str(tmp_path))
    s = open_store("sqlite")
    try:
        assert s.path == tmp_path / "store.db"
    finally:
        s.close()


def test_etcd_url_lists_every_member():
    s = open_store("etcd:http://127.0.0.1:1, 127.0.0.1:2")
    assert s.endpoints == ["http://127.0.0.1:1", "http://127.0.0.1:2"]


@pytest.mark.parametrize("url, hint", [
    ("", "use 'memory'"),
    ("postgres://x", "unknown store"),
    ("memory:/x", "takes no path"),
    ("etcd:", "names no etcd member"),
    ("etcd:https://127.0.0.1:2379", "TLS is not supported"),
    ("sqlite:/tmp/x.db?sync=sometimes", "use 'full'"),
    ("sqlite:/tmp/x.db?cache=1", "unknown option"),
])
def test_bad_urls_say_what_to_do(url, hint):
    with pytest.raises(ValueError, match=hint):
        open_store(url)


def test_sqlite_path_that_is_a_directory(tmp_path):
    with pytest.raises(ValueError, match="is a directory"):
        open_store(f"sqlite:{tmp_path}")


def test_plain_etcd_means_the_local_default_port():
    assert open_store("etcd").endpoints == ["http://127.0.0.1:2379"]
