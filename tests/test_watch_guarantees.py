"""Watch guarantees on every store: every acknowledged write is delivered once, in revision order,
to a watch resumed from any resourceVersion it has seen; after compaction an old resourceVersion is
answered with 410 Expired (an ERROR event carrying a Status), never with a silent gap.

How labkit compacts: the apiserver calls ``Store.compact(rev)`` (``--compact-interval`` seconds
apart, keeping one interval of history, or ``APIServer.compact()`` on demand) and drops the same
revisions from its watch cache. The memory store forgets superseded versions in its lists, sqlite
deletes superseded rows below the floor (as kine does) and etcd runs its own compaction. The
tests force one with ``APIServer.compact()``, and one waits for the periodic compactor.
"""

from __future__ import annotations

import time
import uuid

import pytest
from support.store import etcd_available

from labkit.controlplane.apiserver import APIServer
from labkit.reliability import clients
from labkit.reliability.clients import configmap
from labkit.reliability.watchcheck import Expired, WatchEvent, to_event, watch_stream


@pytest.fixture(params=["memory", "sqlite", "etcd"])
def server(request: pytest.FixtureRequest, tmp_path):  # noqa: ANN001, ANN201
    store = request.param
    cluster = None
    if store == "sqlite":
        url = f"sqlite:{tmp_path / 'store.db'}"
    elif store == "etcd":
        if not etcd_available():
            pytest.skip("no etcd binary (apt-get install etcd-server)")
        from labkit.controlplane.store.etcd_server import EtcdCluster

        cluster = EtcdCluster(members=1)
        cluster.start()
        url = cluster.url
    else:
        url = "memory"
    # a watch window of 8 events: older resumes go through the store's own watch, newer ones
    # through the apiserver's watch cache, so both paths are checked
    api = APIServer(url, compact_interval=None, bookmark_interval=0.5, watch_window=8).start()
    try:
        yield api
    finally:
        api.stop()
        if cluster is not None:
            cluster.stop()


def _write_some(base: str, ns: str) -> list[WatchEvent]:
    """Creates, compare-and-swap updates and deletes, acknowledged one after another."""
    path = f"/api/v1/namespaces/{ns}/configmaps"
    acked: list[WatchEvent] = []
    rvs: dict[str, int] = {}
    for i in range(24):
        name = f"c{i % 4}"
        value = f"v{i}"
        if name not in rvs:
            r = clients.request(base, "POST", path, configmap(ns, name, value))
            assert r.code == 201, r.body
            kind = "ADDED"
        elif i % 7 == 6:
            r = clients.request(base, "DELETE", f"{path}/{name}")
            assert r.code == 200, r.body
            got = clients.request(base, "GET", f"{path}/{name}")
            assert got.code == 404
            # a ConfigMap delete answers with a Status: its revision is found by the watch below
            acked.append(WatchEvent("DELETED", name, None, -1))
            del rvs[name]
            continue
        else:
            r = clients.request(base, "PUT", f"{path}/{name}", configmap(ns, name, value, rvs[name]))
            assert r.code == 200, r.body
            kind = "MODIFIED"
        rvs[name] = int(r.body["metadata"]["resourceVersion"])
        acked.append(WatchEvent(kind, name, value, rvs[name]))
    return acked


def _collect(base: str, path: str, rv: int, until: int) -> list[WatchEvent]:
    """Events from a watch at ``rv`` until one at revision ``until`` arrives (Expired propagates)."""
    out: list[WatchEvent] = []
    for raw in watch_stream(base, path, rv, read_timeout=10):
        if raw["type"] == "BOOKMARK":
            continue
        ev = to_event(raw)
        out.append(ev)
        if ev.rv >= until:
            return out
    raise AssertionError(f"the watch from {rv} ended before revision {until}: {out}")


def _same(got: list[WatchEvent], want: list[WatchEvent]) -> bool:
    """Equal, where a DELETED event's revision is whatever the watch says (deletes return a Status)."""
    return len(got) == len(want) and all(
        (g.type, g.name) == (w.type, w.name) and (w.type == "DELETED" or (g.value, g.rv) == (w.value, w.rv))
        for g, w in zip(got, want, strict=True))


def test_every_write_once_in_order_from_any_seen_revision_and_410_after_compaction(server) -> None:  # noqa: ANN001
    base = server.url
    ns = "w-" + uuid.uuid4().hex[:6]
    assert clients.request(base, "POST", "/api/v1/namespaces", {"metadata": {"name": ns}}).code == 201
    path = f"/api/v1/namespaces/{ns}/configmaps"
    rv0 = int(clients.request(base, "GET", path).body["metadata"]["resourceVersion"])
    acked = _write_some(base, ns)
    last = acked[-1].rv
    assert last > 0, "the last write is an update"

    full = _collect(base, path, rv0, last)
    assert _same(full, acked), f"watch from {rv0}:\n{full}\nacknowledged:\n{acked}"
    revs = [e.rv for e in full]
    assert revs == sorted(set(revs)), "revision order, no duplicates"

    for i, seen in enumerate(full[:-1]):  # resume from every revision the watch delivered
        again = _collect(base, path, seen.rv, last)
        assert again == full[i + 1:], f"resumed from {seen.rv}"

    # compaction: revisions below the floor are gone, and the server says so
    floor = full[len(full) // 2].rv
    server.compact(floor)
    with pytest.raises(Expired) as gone:  # on the first line: not one event before it
        next(watch_stream(base, path, rv0, read_timeout=10))
    assert gone.value.status.get("code") == 410 and gone.value.status.get("reason") == "Expired"
    exact = clients.request(base, "GET", f"{path}?resourceVersion={rv0}&resourceVersionMatch=Exact")
    assert exact.code == 410 and exact.reason == "Expired"
    # at the floor (events after floor - 1 still exist) the watch is whole, not cut short
    after = _collect(base, path, floor - 1, last)
    assert after == [e for e in full if e.rv >= floor]


def test_the_periodic_compactor_turns_an_old_revision_into_410(tmp_path) -> None:  # noqa: ANN001
    with APIServer(f"sqlite:{tmp_path / 'store.db'}", compact_interval=0.2) as api:
        ns = "w-" + uuid.uuid4().hex[:6]
        assert clients.request(api.url, "POST", "/api/v1/namespaces", {"metadata": {"name": ns}}).code == 201
        path = f"/api/v1/namespaces/{ns}/configmaps"
        rv0 = int(clients.request(api.url, "GET", path).body["metadata"]["resourceVersion"])
        for i in range(3):
            assert clients.request(api.url, "POST", path, configmap(ns, f"p{i}", "x")).code == 201
        deadline = time.monotonic() + 10
        while api.store.compact_revision <= rv0 + 1 and time.monotonic() < deadline:
            clients.request(api.url, "POST", path, configmap(ns, f"q{uuid.uuid4().hex[:6]}", "x"))
            time.sleep(0.1)
        assert api.store.compact_revision > rv0 + 1, "the compactor ran"
        with pytest.raises(Expired):
            list(watch_stream(api.url, path, rv0, read_timeout=5))
