"""kubectl exec, cp and attach, and the Python client's stream(), against a whole cluster.

Each goes client -> apiserver (pods/exec, a WebSocket) -> kubelet -> the CRI's streaming server ->
the container's namespaces.
"""

from __future__ import annotations

import hashlib
import os
import subprocess

import pytest
from support.cluster import wait_for
from support.streams import free_port, kubectl_version, run_kubectl, sleeper, start_pod, web_pod

from labkit.cluster import Cluster

pytestmark = pytest.mark.slow

VERSIONS = (30, 33)


@pytest.fixture(scope="module")
def cluster():
    with Cluster(nodes=1, store="sqlite", processes=True) as c:
        c.wait_nodes_ready()
        start_pod(c, sleeper("box"))
        yield c


@pytest.mark.parametrize("minor", VERSIONS)
def test_exec_prints_and_exits_with_the_commands_code(cluster, minor):
    out = run_kubectl(kubectl_version(minor), cluster, "exec", "box", "--", "sh", "-c", "echo hi; echo oops >&2; exit 3")
    assert out.stdout == b"hi\n"
    assert b"oops" in out.stderr
    assert out.returncode == 3


@pytest.mark.parametrize("minor", VERSIONS)
def test_exec_runs_inside_the_container(cluster, minor):
    out = run_kubectl(kubectl_version(minor), cluster, "exec", "box", "--", "sh", "-c", "echo $$; hostname")
    assert out.returncode == 0, out.stderr
    _pid, host = out.stdout.decode().split()
    assert host == "box"  # the pod's UTS namespace, not the node's


@pytest.mark.parametrize("minor", VERSIONS)
def test_exec_i_reads_piped_stdin_to_its_end(cluster, minor):
    out = run_kubectl(kubectl_version(minor), cluster, "exec", "-i", "box", "--", "sh", "-c", "tr a-z A-Z; echo done",
                      stdin=b"hello\nworld\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"HELLO\nWORLD\ndone\n"


def test_exec_it_gives_a_terminal(cluster):
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(kubectl_version(33), ["--kubeconfig", cluster.kubeconfig, "exec", "-it", "box", "--", "sh"],
                          timeout=30)
    try:
        child.sendline("test -t 0 && echo is-a-tty-$((6*7))")
        child.expect("is-a-tty-42")  # the typed line echoes as $((6*7)): 42 is the shell's output
        child.sendline("exit 4")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 4


def test_exec_into_a_missing_container_says_which_exist(cluster):
    out = run_kubectl(kubectl_version(33), cluster, "exec", "box", "-c", "nope", "--", "true")
    assert out.returncode != 0
    assert b"container nope is not valid for pod box" in out.stderr


def test_kubectl_129_gets_one_line_naming_the_kubectl_to_use(cluster):
    out = run_kubectl(kubectl_version(29), cluster, "exec", "box", "--", "true")
    assert out.returncode != 0
    assert b"use kubectl 1.30 or newer" in out.stderr


@pytest.mark.parametrize("minor", VERSIONS)
def test_cp_10_mib_both_ways_byte_for_byte(cluster, tmp_path, minor):
    kubectl = kubectl_version(minor)
    src = tmp_path / "blob.bin"
    src.write_bytes(os.urandom(10 * 1024 * 1024))
    out = run_kubectl(kubectl, cluster, "cp", str(src), f"box:/tmp/blob-{minor}.bin", timeout=120)
    assert out.returncode == 0, out.stderr
    inside = run_kubectl(kubectl, cluster, "exec", "box", "--", "md5sum", f"/tmp/blob-{minor}.bin")
    assert inside.stdout.split()[0].decode() == hashlib.md5(src.read_bytes()).hexdigest()
    back = tmp_path / "back.bin"
    out = run_kubectl(kubectl, cluster, "cp", f"box:/tmp/blob-{minor}.bin", str(back), timeout=120)
    assert out.returncode == 0, out.stderr
    assert back.read_bytes() == src.read_bytes()


def test_attach_streams_the_containers_output(cluster):
    start_pod(cluster, sleeper("ticker", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"))
    proc = subprocess.Popen([kubectl_version(33), "--kubeconfig", cluster.kubeconfig, "attach", "ticker"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = wait_for(lambda: proc.stdout.readline(), timeout=30, what="a line from kubectl attach")
        assert line.startswith(b"tick ")
    finally:
        proc.kill()
        proc.wait()
        cluster.core().delete_namespaced_pod("ticker", "default", grace_period_seconds=0)


def test_python_client_stream_with_stdin_and_an_exit_code(cluster):
    from kubernetes.stream import stream

    core = cluster.core()
    resp = stream(core.connect_get_namespaced_pod_exec, "box", "default",
                  command=["sh", "-c", "read line; echo got $line; echo err >&2; exit 7"],
                  stdin=True, stdout=True, stderr=True, tty=False, _preload_content=False)
    resp.write_stdin("ping\n")
    resp.run_forever(timeout=30)
    assert resp.read_stdout() == "got ping\n"
    assert resp.read_stderr() == "err\n"
    assert resp.returncode == 7


def test_python_client_stream_preloaded_output(cluster):
    from kubernetes.stream import stream

    out = stream(cluster.core().connect_get_namespaced_pod_exec, "box", "default",
                 command=["sh", "-c", "echo one; echo two"], stdout=True, stderr=True, stdin=False, tty=False)
    assert out == "one\ntwo\n"


def test_v4_protocol_carries_the_exit_code_as_a_status(cluster):
    """The exact bytes of v4.channel.k8s.io, which older Python clients speak."""
    import asyncio
    import json

    import aiohttp

    async def go() -> tuple[str, bytes, dict]:
        url = (cluster.url.replace("http", "ws") + "/api/v1/namespaces/default/pods/box/exec"
               "?command=sh&command=-c&command=head+-c+3%3B+exit+2&stdin=true&stdout=true")
        async with aiohttp.ClientSession() as s, s.ws_connect(url, protocols=("v4.channel.k8s.io",)) as ws:
            await ws.send_bytes(b"\x00abc")
            out, status = b"", {}
            async for msg in ws:
                ch, data = msg.data[0], msg.data[1:]
                if ch == 1:
                    out += data
                elif ch == 3:
                    status = json.loads(data)
            return ws.protocol, out, status

    protocol, out, status = asyncio.run(go())
    assert protocol == "v4.channel.k8s.io"
    assert out == b"abc"
    assert status["status"] == "Failure"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "2"}]


def _fetch_concurrently(port: int, n: int = 20) -> list[bytes]:
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    def get(_: int) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as r:
            return r.read()
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(get, range(n)))


@pytest.fixture(scope="module")
def web(cluster):
    start_pod(cluster, web_pod("web", "hello-from-pod"))
    cluster.core().create_namespaced_service("default", {
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}})
    return "web"


@pytest.mark.parametrize("target,remote", [("pod/web", 8080), ("svc/web", 80)])
def test_port_forward_under_20_concurrent_connections(cluster, web, target, remote):
    local = free_port()
    proc = subprocess.Popen([kubectl_version(33), "--kubeconfig", cluster.kubeconfig, "port-forward", target,
                             f"{local}:{remote}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = wait_for(lambda: proc.stdout.readline(), timeout=30, what="kubectl port-forward to listen")
        assert b"Forwarding from 127.0.0.1" in line
        bodies = _fetch_concurrently(local)
        assert bodies == [b"hello-from-pod\n"] * 20
    finally:
        proc.terminate()
        proc.wait()


def test_port_forward_to_a_closed_port_says_so(cluster, web):
    local = free_port()
    proc = subprocess.Popen([kubectl_version(33), "--kubeconfig", cluster.kubeconfig, "port-forward", "pod/web",
                             f"{local}:9"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: proc.stdout.readline(), timeout=30, what="kubectl port-forward to listen")
        import urllib.error
        import urllib.request

        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=10).read()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert b"error forwarding port 9" in err


def test_kubectl_130_port_forward_without_websockets_gets_one_line(cluster, web):
    env = {k: v for k, v in os.environ.items() if k != "KUBECTL_PORT_FORWARD_WEBSOCKETS"}
    proc = subprocess.run([kubectl_version(30), "--kubeconfig", cluster.kubeconfig, "port-forward", "pod/web",
                           f"{free_port()}:8080"], capture_output=True, timeout=30, env=env)
    assert proc.returncode != 0
    assert b"kubectl 1.31 or newer" in proc.stderr


def test_python_client_portforward(cluster, web):
    from kubernetes.stream import portforward

    pf = portforward(cluster.core().connect_get_namespaced_pod_portforward, "web", "default", ports="8080")
    sock = pf.socket(8080)
    sock.setblocking(True)
    sock.sendall(b"GET / HTTP/1.0\r\nHost: web\r\n\r\n")
    reply = b""
    while chunk := sock.recv(65536):
        reply += chunk
    sock.close()
    assert reply.startswith(b"HTTP/1.") and reply.endswith(b"hello-from-pod\n")
    assert pf.error(8080) is None
