"""Real etcd: a three-member cluster keeps writing with one member down, stops cleanly with two."""

from __future__ import annotations

import pytest
from support.store import Collector, etcd_available

from labkit.controlplane.store import Unavailable, open_store

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not etcd_available(), reason="no etcd binary (apt-get install etcd-server)")]


def test_three_members_lose_one_then_quorum_and_recover():
    from labkit.controlplane.store.etcd_server import EtcdCluster

    with EtcdCluster(members=3) as cluster:
        store = open_store(cluster.url)
        got = Collector()
        watch = store.watch("/registry/", 0, got)
        acked = []
        try:
            for i in range(10):
                acked.append(store.create(f"/registry/pods/default/a{i}", b"a").key)

            cluster.kill(0)  # one of three down: two still make a quorum
            for i in range(10):
                acked.append(store.create(f"/registry/pods/default/b{i}", b"b").key)

            cluster.kill(1)  # two of three down: no quorum, writes must fail, not hang
            with pytest.raises(Unavailable) as err:
                store.create("/registry/pods/default/never", b"x")
            assert "quorum" in str(err.value)

            cluster.start(0)
            cluster.start(1)
            for i in range(10):
                acked.append(store.create(f"/registry/pods/default/c{i}", b"c").key)

            items, _ = store.list("/registry/pods/")
            have = {kv.key for kv in items}
            assert set(acked) <= have
            # the watch rode through the failures (reopened on a live member) and missed nothing
            events = got.wait_for(len(acked), timeout=20)
            seen = [e.kv.key for e in events if e.type == "PUT"]
            assert [k for k in seen if k in set(acked)] == acked
        finally:
            watch.cancel()
            store.close()
    assert not any(m.running for m in cluster.members)
    assert not cluster.data_dir.exists()


def test_single_member_keeps_data_across_restart(tmp_path):
    from labkit.controlplane.store.etcd_server import EtcdCluster

    with EtcdCluster(members=1, data_dir_path=tmp_path / "etcd") as cluster:
        store = open_store(cluster.url)
        kv = store.create("/registry/namespaces/demo", b"{}")
        store.close()
    with EtcdCluster(data_dir_path=tmp_path / "etcd") as cluster:
        store = open_store(cluster.url)
        try:
            assert store.get("/registry/namespaces/demo") == kv
        finally:
            store.close()


def test_unreachable_etcd_is_a_clear_error():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = open_store(f"etcd:http://127.0.0.1:{port}")
    with pytest.raises(Unavailable, match="refused"):
        store.create("/x", b"y")


def test_value_over_etcds_request_limit_is_a_clear_error():
    from support.store import running_etcd

    from labkit.controlplane.store import StoreError

    with running_etcd() as cluster:
        store = open_store(cluster.url)
        try:
            with pytest.raises(StoreError, match="max-request-bytes"):
                store.create("/registry/configmaps/default/huge", b"x" * (2 * 1024 * 1024))
            assert store.get("/registry/configmaps/default/huge") is None
        finally:
            store.close()


def test_long_lists_are_read_in_pages_at_one_revision(monkeypatch):
    from support.store import running_etcd

    import labkit.controlplane.store.etcd as etcd_store

    monkeypatch.setattr(etcd_store, "PAGE", 4)
    with running_etcd() as cluster:
        store = open_store(cluster.url)
        try:
            for i in range(11):
                store.create(f"/registry/pods/default/p{i:02d}", b"{}")
            store.create("/registry/services/default/s", b"{}")
            items, rev = store.list("/registry/pods/")
            assert [kv.key[-3:] for kv in items] == [f"p{i:02d}" for i in range(11)]
            store.delete("/registry/pods/default/p05")
            again, _ = store.list("/registry/pods/", revision=rev)
            assert again == items
            page, _ = store.list("/registry/pods/", revision=rev, limit=6, start_after=items[2].key)
            assert [kv.key[-3:] for kv in page] == [f"p{i:02d}" for i in range(3, 9)]
        finally:
            store.close()
