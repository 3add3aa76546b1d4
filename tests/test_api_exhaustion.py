"""Resource exhaustion: each attack gets a clear error, and the apiserver goes on serving everyone else.

Many watches (a cap, then 429), a watcher that stops reading (closed, and it resumes from its
last resourceVersion), huge lists (pages), deeply nested bodies, and more requests at once than
the in-flight limits allow (429 with Retry-After, as kube-apiserver's --max-requests-inflight).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest
import requests

MAX_WATCHES = 5
BACKLOG = 50
MAX_MUTATING = 2


@pytest.fixture(scope="module")
def small() -> Iterator:
    """A server with small limits, so each one is reached with a handful of requests."""
    from labkit.controlplane.apiserver import APIServer

    with APIServer("memory", compact_interval=None, bookmark_interval=0.5, max_watches=MAX_WATCHES,
                   watch_backlog=BACKLOG, max_mutating_requests_inflight=MAX_MUTATING) as server:
        yield server


def wait_until(check, what: str, timeout: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def serves(api) -> bool:  # noqa: ANN001
    return requests.get(api.url + "/api/v1/namespaces/default", timeout=5).status_code == 200


def assert_429(r: requests.Response) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["Retry-After"] == "1"
    status = r.json()
    assert status["kind"] == "Status" and status["reason"] == "TooManyRequests" and status["code"] == 429
    assert status["message"] == "Too many requests, please try again later."


def raw_request(api, head: str, rcvbuf: int | None = None) -> socket.socket:  # noqa: ANN001
    """A request sent on a plain socket, whose answer nobody reads (yet)."""
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((api.host, api.port))
    sock.sendall(head.encode())
    return sock


def test_watches_past_the_cap_get_429_and_the_server_serves_on(small):
    path = "/api/v1/namespaces/default/configmaps?watch=1"
    held = [requests.get(small.url + path, stream=True, timeout=10) for _ in range(MAX_WATCHES)]
    try:
        assert all(r.status_code == 200 for r in held)
        assert_429(requests.get(small.url + path, stream=True, timeout=10))
        assert serves(small)
        held.pop().close()
        wait_until(lambda: small.inflight.watches < MAX_WATCHES, "a watch slot to free")
        again = requests.get(small.url + path, stream=True, timeout=10)
        assert again.status_code == 200
        held.append(again)
    finally:
        for r in held:
            r.close()
    wait_until(lambda: small.inflight.watches == 0, "every watch to end")


def _events(data: bytes) -> list[dict]:
    """The complete event lines of a watch stream (a cut-off stream ends with a partial one)."""
    return [json.loads(line) for line in data.split(b"\n")[:-1] if line.startswith(b"{")]


def _dechunk(raw: bytes) -> bytes:
    """The body of an HTTP/1.1 chunked reply, as far as it arrived."""
    body = raw.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in raw else b""
    out, pos = b"", 0
    while (end := body.find(b"\r\n", pos)) != -1:
        size = int(body[pos:end].split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += body[end + 2:end + 2 + size]
        pos = end + 2 + size + 2
    return out


def test_a_watcher_that_stops_reading_is_closed_and_resumes_from_its_last_version(small):
    from labkit.controlplane.apiserver.codec import decode

    url = small.url + "/api/v1/namespaces/default/configmaps"
    r = requests.post(url, json={"metadata": {"name": "slow"}, "data": {"v": "0"}}, timeout=10)
    start_rv = r.json()["metadata"]["resourceVersion"]
    # a client with a tiny receive window that never reads: the server's writes soon block
    sock = raw_request(small, f"GET /api/v1/namespaces/default/configmaps?watch=1&resourceVersion={start_rv} "
                       "HTTP/1.1\r\nHost: x\r\n\r\n", rcvbuf=4096)
    wait_until(lambda: small.inflight.watches == 1, "the slow watch to start")
    pad = "x" * 20_000
    for i in range(1, 400):  # ~8 MB of events: far more than the socket buffers and the backlog hold
        requests.put(f"{url}/slow", json={"metadata": {"name": "slow"}, "data": {"v": str(i), "pad": pad}},
                     timeout=10).raise_for_status()
        if small.inflight.watches == 0:
            break
    wait_until(lambda: small.inflight.watches == 0, "the server to close the slow watch")
    assert serves(small)
    # what the slow client did get ends early; it resumes from the last version it saw
    sock.settimeout(5)
    received = b""
    try:
        while chunk := sock.recv(1 << 16):
            received += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    sock.close()
    seen = _events(_dechunk(received))
    last = seen[-1]["object"]["metadata"]["resourceVersion"] if seen else start_rv
    final = int(decode(small.store.get("/registry/configmaps/default/slow").value)["data"]["v"])
    resumed = requests.get(url, params={"watch": "1", "resourceVersion": last, "timeoutSeconds": "1"}, timeout=10)
    values = [int(e["object"]["data"]["v"]) for e in _events(resumed.content) if e["type"] == "MODIFIED"]
    before = int(seen[-1]["object"]["data"]["v"]) if seen else 0
    assert values == list(range(before + 1, final + 1)), "the resumed watch has a gap or a repeat"


def test_huge_lists_page_and_an_unbounded_list_still_answers(small):
    from labkit.controlplane.apiserver.resources import BY_PLURAL

    rt = BY_PLURAL["configmaps"]
    requests.post(small.url + "/api/v1/namespaces", json={"metadata": {"name": "huge"}}, timeout=10)
    for i in range(3000):
        small.registry.create(rt, "huge", {"metadata": {"name": f"cm-{i:05d}"}, "data": {"i": str(i)}})
    url = small.url + "/api/v1/namespaces/huge/configmaps"
    names, token, pages = [], None, 0
    while True:
        page = requests.get(url, params={"limit": 500, **({"continue": token} if token else {})}, timeout=30).json()
        names += [o["metadata"]["name"] for o in page["items"]]
        pages += 1
        token = page["metadata"].get("continue")
        if not token:
            break
    whole = requests.get(url, timeout=60).json()
    assert pages == 6 and names == [o["metadata"]["name"] for o in whole["items"]] and len(names) == 3000
    assert serves(small)


def test_deeply_nested_bodies_are_400_not_500(small):
    url = small.url + "/api/v1/namespaces/default/configmaps"
    cases = [(b"[" * 200_000 + b"]" * 200_000, "application/json"),
             (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "application/json"),
             (b"[" * 50_000 + b"]" * 50_000, "application/yaml"),
             # a billion laughs: nine levels of aliases, each ten times the one before
             (("a0: &a0 [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
                 f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 10))).encode(),
              "application/yaml")]
    before = small.store.revision
    for body, ct in cases:
        r = requests.post(url, data=body, headers={"Content-Type": ct}, timeout=30)
        assert r.status_code == 400, r.text[:300]
        assert r.json()["reason"] == "BadRequest"
    assert small.store.revision == before
    assert serves(small)


def test_mutating_requests_past_the_limit_get_429_while_reads_go_on(small):
    url = small.url + "/api/v1/namespaces/default/configmaps"
    head = ("POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n")
    stalled = [raw_request(small, head) for _ in range(MAX_MUTATING)]  # bodies that never come
    try:
        wait_until(lambda: small.inflight.mutating == MAX_MUTATING, "the stalled writes to be in flight")
        assert_429(requests.post(url, json={"metadata": {"name": "refused"}}, timeout=10))
        assert requests.get(url, timeout=10).status_code == 200  # reads have their own limit
        assert requests.get(url + "?watch=1&timeoutSeconds=1", timeout=10).status_code == 200  # long-running
        assert requests.get(small.url + "/readyz", timeout=10).status_code == 200
    finally:
        for s in stalled:
            s.close()
    wait_until(lambda: small.inflight.mutating == 0, "the stalled writes to end")
    r = requests.post(url, json={"metadata": {"name": "accepted"}}, timeout=10)
    assert r.status_code == 201, r.text


def test_a_burst_past_max_requests_inflight_gets_429_with_retry_after(tmp_path):
    from labkit.controlplane.apiserver import APIServer
    from labkit.controlplane.apiserver.overload import burst

    with APIServer(f"sqlite:{tmp_path}/store.db", compact_interval=None, max_requests_inflight=1) as api:
        result = burst(api.url, clients=40, seconds=1.0, path="/api/v1/namespaces/default/configmaps")
        assert result.codes[429] > 0 and result.codes[200] > 0, result.counts()
        assert result.no_retry_after == 0 and result.failures == 0, result.counts()
        assert set(result.codes) == {200, 429}, result.counts()
        assert serves(api)
