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
