"""Writes arriving together through the API: every one answered once it is stored, on every store.

On sqlite, a lone write runs on the event loop and writes that arrive together are committed
together (see StoreCalls.create); what a client notices must not depend on which path
a request took: 201 once stored, 409 for a name that is taken, every create in a watch, each
object readable right after its 201, and a restarted server finds all of them.
"""

from __future__ import annotations

import http.client
import json
import threading
from urllib.parse import urlsplit

import pytest
import requests

from labkit.controlplane.apiserver import APIServer


@pytest.fixture(params=["memory", "sqlite"])
def store_url(request, tmp_path):
    return "memory" if request.param == "memory" else f"sqlite:{tmp_path / 'store.db'}"


def _post_many(url: str, names: list[str], clients: int) -> list[tuple[str, int, dict]]:
    """POST a configmap per name from ``clients`` concurrent connections; (name, status, body)."""
    parts = urlsplit(url)
    out: list[tuple[str, int, dict]] = []
    lock = threading.Lock()
    chunks = [names[i::clients] for i in range(clients)]

    def run(chunk: list[str]) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            for name in chunk:
                body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                                   "data": {"k": name}})
                conn.request("POST", "/api/v1/namespaces/default/configmaps", body,
                             {"Content-Type": "application/json"})
                resp = conn.getresponse()
                reply = json.loads(resp.read())
                with lock:
                    out.append((name, resp.status, reply))
        finally:
            conn.close()

    threads = [threading.Thread(target=run, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def test_concurrent_creates_all_stored_and_watched(store_url):
    with APIServer(store_url, compact_interval=None) as api:
        start = requests.get(f"{api.url}/api/v1/namespaces/default/configmaps", timeout=10).json()
        rv = start["metadata"]["resourceVersion"]
        stream = requests.get(f"{api.url}/api/v1/namespaces/default/configmaps",
                              params={"watch": "true", "resourceVersion": rv}, stream=True, timeout=30)
        names = [f"cm-{i}" for i in range(120)]
        results = _post_many(api.url, names, clients=8)
        assert sorted(r[1] for r in results) == [201] * len(names)
        versions = [int(r[2]["metadata"]["resourceVersion"]) for r in results]
        assert len(set(versions)) == len(names)  # one revision each
        for name, _, reply in results[:20]:  # readable right after the 201, at that version or later
            got = requests.get(f"{api.url}/api/v1/namespaces/default/configmaps/{name}", timeout=10).json()
            assert got["data"] == {"k": name}
            assert int(got["metadata"]["resourceVersion"]) >= int(reply["metadata"]["resourceVersion"])
        seen = set()
        for line in stream.iter_lines():
            ev = json.loads(line)
            assert ev["type"] == "ADDED"
            seen.add(ev["object"]["metadata"]["name"])
            if seen >= set(names):
                break
        stream.close()
        assert seen == set(names)


def test_concurrent_creates_of_one_name_one_wins(store_url):
    with APIServer(store_url, compact_interval=None) as api:
        results = _post_many(api.url, ["same"] * 16, clients=8)
        statuses = sorted(r[1] for r in results)
        assert statuses == [201] + [409] * 15
        assert all(r[2]["reason"] == "AlreadyExists" for r in results if r[1] == 409)
        got = requests.get(f"{api.url}/api/v1/namespaces/default/configmaps/same", timeout=10).json()
        winner = next(r[2] for r in results if r[1] == 201)
        assert got["metadata"]["uid"] == winner["metadata"]["uid"]


def test_creates_acknowledged_before_a_restart_are_there_after_it(tmp_path):
    url = f"sqlite:{tmp_path / 'store.db'}"
    names = [f"keep-{i}" for i in range(60)]
    with APIServer(url, compact_interval=None) as api:
        results = _post_many(api.url, names, clients=6)
        assert {r[1] for r in results} == {201}
    with APIServer(url, compact_interval=None) as api:
        items = requests.get(f"{api.url}/api/v1/namespaces/default/configmaps", timeout=10).json()["items"]
        assert {i["metadata"]["name"] for i in items} >= set(names)


def test_invalid_create_among_concurrent_ones_changes_nothing(store_url):
    with APIServer(store_url, compact_interval=None) as api:
        names = [f"ok-{i}" for i in range(20)] + ["Not_Valid"]
        results = _post_many(api.url, names, clients=7)
        by_name = {r[0]: r for r in results}
        assert by_name["Not_Valid"][1] == 422
        assert all(by_name[n][1] == 201 for n in names if n != "Not_Valid")
        missing = requests.get(f"{api.url}/api/v1/namespaces/default/configmaps/Not_Valid", timeout=10)
        assert missing.status_code == 404


def test_every_201_survives_kill_9_of_the_apiserver_process(tmp_path):
    """Concurrent creates against ``python -m labkit.controlplane.apiserver``; SIGKILL it mid-stream.

    Each 201 was sent only after the commit holding that create reached the disk, so a new
    apiserver on the same file must list every name that got one.
    """
    import signal
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = f"sqlite:{tmp_path / 'store.db'}"
    base = f"http://127.0.0.1:{port}"

    def start() -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "labkit.controlplane.apiserver", "--port", str(port),
                                 "--store", store, "--compact-interval", "0"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert "ready" in proc.stdout.readline()  # type: ignore[union-attr]
        return proc

    proc = start()
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(t: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        i = 0
        try:
            while not stop.is_set():
                name = f"k{t}-{i}"
                conn.request("POST", "/api/v1/namespaces/default/configmaps",
                             json.dumps({"metadata": {"name": name}}), {"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                if resp.status == 201:
                    with lock:
                        acked.append(name)
                i += 1
        except (OSError, http.client.HTTPException):
            pass  # the server was killed under us
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(t,)) for t in range(6)]
    try:
        for t in threads:
            t.start()
        while True:
            with lock:
                if len(acked) >= 300:
                    break
            threading.Event().wait(0.01)
        proc.send_signal(signal.SIGKILL)  # mid-stream: creates are in flight right now
        proc.wait(10)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    proc = start()
    try:
        items = requests.get(f"{base}/api/v1/namespaces/default/configmaps", timeout=10).json()["items"]
        have = {i["metadata"]["name"] for i in items}
        missing = [n for n in acked if n not in have]
        assert missing == [], f"{len(missing)} of {len(acked)} acknowledged creates lost after kill -9"
    finally:
        proc.terminate()
        proc.wait(10)
