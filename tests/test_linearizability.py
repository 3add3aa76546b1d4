"""Histories checked for linearizability: the checker on histories known to be good or bad, then
concurrent clients on each store (memory, sqlite, three-member etcd) while faults are injected.

The second half runs through the apiserver as a process: the clients' create, get,
compare-and-swap update and delete are recorded with their call and return times; every history
must be linearizable object by object, resourceVersions must follow real time, and a watch held
through the faults must see every acknowledged write once, in order.
"""

from __future__ import annotations

import math

import pytest
from support.store import etcd_available

from labkit.reliability.history import History, Operation
from labkit.reliability.linearizability import check_history, check_operations, check_revision_order

INF = math.inf


def op(i, kind, call, ret, status="ok", value=None, rv=None, expected=None, out=None, error="", key="k", p=None):  # noqa: ANN001, ANN201
    """One operation; for a get ``value`` is what it read (None: absent)."""
    if kind == "get":
        return Operation(i, p if p is not None else i, key, kind, call=call, ret=ret, status=status, out_value=value,
                         out_rv=rv, error=error)
    return Operation(i, p if p is not None else i, key, kind, value=value, expected_rv=expected, call=call, ret=ret,
                     status=status, out_rv=rv, error=error)


# ---- the checker on known histories ------------------------------------------------------------

GOOD = {
    "sequential": [op(0, "create", 0, 1, value="a", rv=5), op(1, "get", 2, 3, value="a", rv=5),
                   op(2, "cas", 4, 5, value="b", expected=5, rv=9), op(3, "get", 6, 7, value="b", rv=9),
                   op(4, "delete", 8, 9), op(5, "get", 10, 11)],
    "concurrent read sees either": [op(0, "create", 0, 1, value="a", rv=5),
                                    op(1, "cas", 2, 6, value="b", expected=5, rv=7),
                                    op(2, "get", 3, 4, value="a", rv=5), op(3, "get", 4.5, 5, value="b", rv=7)],
    "two cas from one rv, one loses": [op(0, "create", 0, 1, value="a", rv=5),
                                       op(1, "cas", 2, 4, value="b", expected=5, rv=8),
                                       op(2, "cas", 2, 4, status="fail", value="c", expected=5, error="409 Conflict"),
                                       op(3, "get", 5, 6, value="b", rv=8)],
    "indeterminate write that happened later": [op(0, "create", 0, 1, value="a", rv=5),
                                                op(1, "cas", 2, INF, status="info", value="b", expected=5),
                                                op(2, "get", 3, 4, value="a", rv=5),
                                                op(3, "get", 10, 11, value="b", rv=12),
                                                op(4, "cas", 12, 13, value="c", expected=12, rv=14)],
    "indeterminate write that never happened": [op(0, "create", 0, 1, value="a", rv=5),
                                                op(1, "cas", 2, INF, status="info", value="b", expected=5),
                                                op(2, "get", 30, 31, value="a", rv=5)],
    "requests that never reached the server": [op(0, "create", 0, 1, value="a", rv=5),
                                               op(1, "cas", 2, 3, status="fail", value="b", expected=5,
                                                  error="refused: [Errno 111]"),
                                               op(2, "create", 2, 3, status="fail", value="c", error="refused", p=7),
                                               op(3, "get", 4, 5, value="a", rv=5)],
    "recreate after delete": [op(0, "create", 0, 1, value="a", rv=5), op(1, "delete", 2, 3),
                              op(2, "create", 4, 5, status="fail", value="x", error="409 AlreadyExists", p=9),
                              op(3, "create", 4, 6, value="b", rv=11), op(4, "get", 7, 8, value="b", rv=11)],
}

BAD = {
    "stale read": [op(0, "create", 0, 1, value="a", rv=5), op(1, "cas", 2, 3, value="b", expected=5, rv=7),
                   op(2, "get", 4, 5, value="a", rv=5)],
    "lost update": [op(0, "create", 0, 1, value="a", rv=5), op(1, "cas", 2, 3, value="b", expected=5, rv=7),
                    op(2, "get", 4, 5, value="a", rv=5), op(3, "get", 6, 7, value="b", rv=7)],
    "a cas that succeeds twice on one rv": [op(0, "create", 0, 1, value="a", rv=5),
                                            op(1, "cas", 2, 4, value="b", expected=5, rv=7),
                                            op(2, "cas", 2, 4, value="c", expected=5, rv=8)],
    "a read of a never-written value": [op(0, "create", 0, 1, value="a", rv=5), op(1, "get", 2, 3, value="z", rv=5)],
    "a read of a deleted object": [op(0, "create", 0, 1, value="a", rv=5), op(1, "delete", 2, 3),
                                   op(2, "get", 4, 5, value="a", rv=5)],
    "an acknowledged create then absent": [op(0, "create", 0, 1, value="a", rv=5), op(1, "get", 2, 3)],
    "a conflict with nobody in the way": [op(0, "create", 0, 1, value="a", rv=5),
                                          op(1, "cas", 2, 3, status="fail", value="b", expected=5,
                                             error="409 Conflict")],
    "resourceVersion going backwards": [op(0, "create", 0, 1, value="a", rv=5),
                                        op(1, "cas", 2, 3, value="b", expected=5, rv=4)],
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_checker_accepts_a_linearizable_history(name: str) -> None:
    result = check_history(GOOD[name])
    assert result.ok, result.explain()


@pytest.mark.parametrize("name", sorted(BAD))
def test_checker_finds_the_violation(name: str) -> None:
    result = check_history(BAD[name])
    assert not result.ok and result.violations, f"{name} was accepted"
    assert "NOT linearizable" in result.explain()


def test_objects_are_checked_apart_and_the_bad_one_is_named() -> None:
    ops = [op(i, o.kind, o.call, o.ret, o.status, o.value if o.kind != "get" else o.out_value, o.out_rv,
              o.expected_rv, error=o.error, key="good") for i, o in enumerate(GOOD["sequential"])]
    ops += [Operation(100 + o.id, o.process, "bad", o.kind, o.value, o.expected_rv, o.call, o.ret, o.status,
                      o.out_value, o.out_rv, o.error) for o in BAD["stale read"]]
    result = check_history(ops)
    assert [k.key for k in result.violations] == ["bad"]
    assert "#102" in result.explain(), "the report names an operation that could not be placed"


def test_a_long_concurrent_history_is_checked_quickly_thanks_to_memoisation() -> None:
    # 8 clients, each reading then writing, all overlapping: without the cache this is 8!-ish per round
    ops, rv, t, i = [op(0, "create", 0, 1, value="v0", rv=1)], 1, 2.0, 1
    for _ in range(40):
        reads = [op(i + j, "get", t, t + 1, value=f"v{rv}" if rv > 1 else "v0", rv=rv, p=j) for j in range(8)]
        i += 8
        writes = [op(i, "cas", t + 2, t + 3, value=f"v{rv + 1}", expected=rv, rv=rv + 1, p=0)]
        writes += [op(i + j, "cas", t + 2, t + 3, status="fail", value=f"x{i + j}", expected=rv,
                      error="409 Conflict", p=j) for j in range(1, 8)]
        i += 8
        ops += reads + writes
        rv, t = rv + 1, t + 4
    ops[1].out_value = "v0"
    assert check_operations("k", ops).ok


def test_revision_order_across_objects() -> None:
    a = op(0, "create", 0, 1, value="a", rv=5, key="x")
    b = op(1, "create", 2, 3, value="b", rv=4, key="y")  # called after a returned, yet an older version
    c = op(2, "create", 0.5, 3, value="c", rv=3, key="z")  # concurrent with a: any order is fine
    assert check_revision_order([a, b, c]) == [(a, b)]
    assert check_revision_order([a, c]) == []


def test_the_recorder_keeps_an_unknown_outcome_open_forever() -> None:
    h = History()
    with h.invoke(1, "k", "create", value="a") as o:
        o.status, o.out_rv = "ok", 3
    with pytest.raises(TimeoutError), h.invoke(2, "k", "cas", value="b", expected_rv=3):
        raise TimeoutError
    done, unknown = h.ops
    assert done.ret >= done.call and unknown.status == "info" and unknown.ret == INF
    assert check_history(h).ok


# ---- recorded histories on every store, with faults ----------------------------------------------

# (store, seconds of traffic, faults spread over them): memory lives inside the apiserver, so a
# kill -9 there loses everything by design (benchmarks/bench_linearizability.py shows the checker
# catching it); it gets the pause
RUNS = {
    "memory": (4.0, ["apiserver-pause"]),
    "sqlite": (5.0, ["apiserver-kill", "apiserver-pause"]),
    "etcd": (7.0, ["etcd-member-kill", "apiserver-kill", "etcd-member-pause"]),
}


@pytest.mark.parametrize("store", sorted(RUNS))
def test_concurrent_clients_under_faults_see_a_linearizable_store(store: str, tmp_path) -> None:  # noqa: ANN001
    if store == "etcd" and not etcd_available():
        pytest.skip("no etcd binary (apt-get install etcd-server)")
    from labkit.reliability import campaign

    seconds, faults = RUNS[store]
    report = campaign.run(store, seconds=seconds, faults=faults, clients=5, keys=3, seed=15, workdir=tmp_path)
    counts = report.history.counts()
    # enough happened to mean something, even on a loaded machine where a restart takes seconds
    assert counts["ok"] >= 40 and counts["info"] + counts["fail"] > 0, report.summary()
    assert report.ok, report.explain()
    assert report.lost == 0 and report.watch is not None and report.watch.acknowledged >= 10, report.summary()


# ---- a lease is not a lock: the pause, and the fencing token that fixes it ------------------------


def test_a_paused_leader_writes_after_its_successor_unless_fenced() -> None:
    from labkit.controlplane.apiserver import APIServer
    from labkit.reliability.fencing import demo

    with APIServer("memory") as api:
        unfenced = demo(api.url, fencing=False)
        fenced = demo(api.url, fencing=True)
    # a was paused past its lease between checking it and writing; b took over and wrote
    assert ("b", 1, 0) in unfenced.entries, unfenced
    assert unfenced.stale_writes == [("a", 0, 1)], f"two leaders wrote: {unfenced}"
    assert not fenced.stale_writes and fenced.fenced, fenced
    assert fenced.entries == [("a", 0, 0), ("b", 1, 0), ("b", 1, 1)], fenced


def test_a_final_read_that_misses_the_last_acknowledged_write_counts_as_lost() -> None:
    from labkit.reliability.campaign import final_reads_lost

    h = History(ops=[op(0, "create", 0, 1, value="a", rv=5, p=0), op(1, "cas", 2, 3, value="b", expected=5, rv=7, p=0),
                     op(2, "get", 10, 11, p=1)])  # process 1 is the final reader: it finds nothing
    assert len(final_reads_lost(h)) == 1
    h.ops[2].out_value, h.ops[2].out_rv = "b", 7
    assert final_reads_lost(h) == []


# ---- the violation the histories found on etcd, pinned down --------------------------------------


def test_etcd_gateway_never_sends_a_write_twice_after_its_connection_broke() -> None:
    """The leader commits a compare-and-swap and dies before answering. Re-sending it to the new
    leader would fail its compare and tell the client "409 Conflict" about its own successful
    write (seen as a CAS answered 409 whose value the watch then delivered). The gateway must
    answer "unknown" (Unavailable) instead."""
    import http.server
    import json
    import socket
    import threading

    from labkit.controlplane.store import Unavailable
    from labkit.controlplane.store.etcd_gateway import Gateway

    txns: dict[str, int] = {"old": 0, "new": 0}
    servers: dict[str, http.server.ThreadingHTTPServer] = {}

    def handler(me: str, member_id: str):  # noqa: ANN202
        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/v3/kv/txn":
                    txns[me] += 1
                    if me == "old":  # committed, then the process died: no answer
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    body = {"header": {"revision": "9"}, "succeeded": False, "responses": [{"response_range": {}}]}
                elif self.path == "/v3/maintenance/status":
                    body = {"header": {"member_id": member_id}, "leader": member_id}
                else:  # member list
                    body = {"members": [{"ID": "1", "clientURLs": [f"http://127.0.0.1:{servers['old'].server_port}"]},
                                        {"ID": "2", "clientURLs": [f"http://127.0.0.1:{servers['new'].server_port}"]}]}
                raw = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
        return H

    for me, mid in (("old", "1"), ("new", "2")):
        servers[me] = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler(me, mid))
        threading.Thread(target=servers[me].serve_forever, daemon=True).start()
    gw = Gateway([f"http://127.0.0.1:{servers[m].server_port}" for m in ("old", "new")], timeout=2, failover_wait=2)
    try:
        with pytest.raises(Unavailable, match="may or may not have been applied"):
            gw.call("/v3/kv/txn", {"compare": [], "success": [], "failure": []}, write=True)
        assert txns == {"old": 1, "new": 0}, "the write went out once, and only once"
    finally:
        gw.close()
        for s in servers.values():
            s.shutdown()
            s.server_close()
