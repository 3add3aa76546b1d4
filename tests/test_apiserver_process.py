"""The apiserver as its own process: ready line, health endpoints, clear errors, a persistent store."""

from __future__ import annotations

import socket
import subprocess
import sys

import requests


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "labkit.controlplane.apiserver", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # type: ignore[union-attr]
    return proc, line


def test_process_serves_and_stops_cleanly(tmp_path):
    port = _free_port()
    proc, line = _start("--port", str(port), "--store", f"sqlite:{tmp_path / 'store.db'}")
    try:
        assert line.startswith(f"apiserver ready on http://127.0.0.1:{port}") and "sqlite" in line
        url = f"http://127.0.0.1:{port}"
        for path in ("/healthz", "/livez", "/readyz"):
            assert requests.get(url + path, timeout=5).text == "ok"
        r = requests.post(url + "/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "kept"}},
                          timeout=5)
        assert r.status_code == 201
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
    # the same store file, a new process: the object is still there
    proc, line = _start("--port", str(port), "--store", f"sqlite:{tmp_path / 'store.db'}")
    try:
        r = requests.get(f"http://127.0.0.1:{port}/api/v1/namespaces/default/configmaps/kept", timeout=5)
        assert r.status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)


def test_bad_store_and_busy_port_give_plain_errors():
    proc, line = _start("--port", "0", "--store", "bogus:x")
    err = proc.stderr.read()  # type: ignore[union-attr]
    assert proc.wait(10) == 2 and "unknown store" in err and "Traceback" not in err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        proc, line = _start("--port", str(busy.getsockname()[1]), "--store", "memory")
        err = proc.stderr.read()  # type: ignore[union-attr]
        assert proc.wait(10) == 1 and "cannot listen" in err and "Traceback" not in err


def test_watch_resumes_across_an_apiserver_restart(tmp_path):
    """kill -9 the apiserver; a client resuming its watch from its last resourceVersion misses nothing."""
    import json
    import signal

    port = _free_port()
    store = f"sqlite:{tmp_path / 'store.db'}"
    url = f"http://127.0.0.1:{port}/api/v1/namespaces/default/configmaps"
    proc, _ = _start("--port", str(port), "--store", store)
    try:
        rv = requests.post(url, json={"metadata": {"name": "before"}}, timeout=5).json()["metadata"]["resourceVersion"]
        requests.post(url, json={"metadata": {"name": "while-away"}}, timeout=5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    proc, line = _start("--port", str(port), "--store", store)
    try:
        assert "ready" in line
        requests.post(url, json={"metadata": {"name": "after"}}, timeout=5)
        r = requests.get(url, params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "1"}, timeout=10)
        names = [json.loads(x)["object"]["metadata"]["name"] for x in r.text.splitlines()]
        assert names == ["while-away", "after"]
    finally:
        proc.terminate()
        proc.wait(10)
