"""CRI over real gRPC: the kubelet's RemoteRuntime talks to the CRI server through a unix socket."""

from __future__ import annotations

import subprocess
import sys

import grpc
import pytest
from support.node import MemoryRuntime

from labkit.errors import NotFound, Unsupported
from labkit.node.cri import RemoteRuntime, crictl, serve
from labkit.node.cri import api_pb2 as pb
from labkit.node.cri import api_pb2_grpc as pb_grpc
from labkit.oci.resources import Resources
from labkit.runtime.base import ContainerConfig, ContainerState, Device, Mount, PodSandboxConfig, SandboxState


@pytest.fixture
def cri(tmp_path):
    backend = MemoryRuntime()
    server = serve(backend, tmp_path / "cri.sock")
    client = RemoteRuntime(server.endpoint)
    yield backend, server, client
    client.close()
    server.stop()


def test_pod_lifecycle_crosses_the_socket(cri):
    backend, server, rt = cri
    assert rt.version().runtime_name == "memory"
    sc = PodSandboxConfig(name="web", namespace="demo", uid="u1", labels={"app": "web"})
    sid = rt.run_pod_sandbox(sc)
    st = rt.pod_sandbox_status(sid)
    assert st.state == SandboxState.READY and st.name == "web" and st.namespace == "demo"
    assert st.netns_path == f"/run/netns/labkit-{sid[:8]}"  # carried in the verbose info map
    cfg = ContainerConfig(
        name="app", image="busybox:latest", command=["sh"], args=["-c", "echo hi"], env={"A": "1"},
        mounts=[Mount("/data", "/d", readonly=True)], devices=[Device("/dev/null", "/dev/gpu0")],
        resources=Resources(memory_bytes=64 << 20, cpu_quota_us=50_000, pids_limit=64),
    )
    cid = rt.create_container(sid, cfg, sc)
    got = backend.configs[cid]
    assert got.env == {"A": "1"} and got.args == ["-c", "echo hi"]
    assert got.mounts[0].readonly and got.devices[0].container_path == "/dev/gpu0"
    assert (got.resources.memory_bytes, got.resources.cpu_quota_us, got.resources.pids_limit) == (64 << 20, 50_000, 64)
    rt.start_container(cid)
    s = rt.container_status(cid)
    assert s.state == ContainerState.RUNNING and s.pid == 4242 and s.sandbox_id == sid
    assert [c.id for c in rt.list_containers(sid)] == [cid]
    assert rt.exec_sync(cid, ["echo", "x"]).stdout == b"echo x"
    assert rt.logs(cid) == b"log of app\n"
    assert rt.container_stats(cid).memory_bytes == 1 << 20
    rt.stop_container(cid)
    s = rt.container_status(cid)
    assert s.state == ContainerState.EXITED and s.exit_code == 0 and s.reason == "Completed"
    rt.remove_container(cid)
    rt.stop_pod_sandbox(sid)
    rt.remove_pod_sandbox(sid)
    assert rt.list_pod_sandboxes() == []
    methods = [e["method"].split("/")[1] for e in server.trace.entries]
    assert methods[:3] == ["Version", "RunPodSandbox", "PodSandboxStatus"]
    assert "CreateContainer" in methods and "RemovePodSandbox" in methods


def test_images_and_errors_map_to_runtime_exceptions(cri):
    _, _, rt = cri
    assert [i.name for i in rt.list_images()] == ["busybox:latest"]
    assert rt.image_status("nope:1") is None
    assert rt.pull_image("busybox:latest").digest.startswith("sha256:")
    with pytest.raises(NotFound, match="local store"):
        rt.pull_image("nope:1")
    with pytest.raises(NotFound, match="not found"):
        rt.container_status("doesnotexist")


def test_crictl_lists_over_the_socket(cri):
    _, server, rt = cri
    sc = PodSandboxConfig(name="web")
    sid = rt.run_pod_sandbox(sc)
    rt.start_container(rt.create_container(sid, ContainerConfig(name="app", image="busybox:latest"), sc))
    ps = crictl("ps", server.endpoint)
    assert "Running" in ps and "app" in ps and "web" in ps
    assert "web" in crictl("pods", server.endpoint)
    assert "busybox" in crictl("images", server.endpoint)
    assert "RuntimeName:  memory" in crictl("version", server.endpoint)
    # and as a command, the way a reader types it
    out = subprocess.run(
        [sys.executable, "-m", "labkit.node.cri.crictl", "-r", server.endpoint, "pods"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "web" in out


def test_raw_grpc_client_sees_runtime_v1_names(cri):
    """A client built only from the proto (as crictl is) reaches the service by its CRI name."""
    _, server, _ = cri
    with grpc.insecure_channel(server.endpoint.replace("unix://", "unix:")) as ch:
        r = ch.unary_unary(
            "/runtime.v1.RuntimeService/Version",
            request_serializer=pb.VersionRequest.SerializeToString,
            response_deserializer=pb.VersionResponse.FromString,
        )(pb.VersionRequest(version="v1"))
        assert r.runtime_api_version == "v1"
        assert pb_grpc.ImageServiceStub(ch).ListImages(pb.ListImagesRequest()).images[0].repo_tags == ["busybox:latest"]


def test_no_server_is_a_clear_error(tmp_path):
    with pytest.raises(Unsupported, match="no CRI server answers"):
        RemoteRuntime(str(tmp_path / "absent.sock"), connect_timeout=0.5)


def test_server_process_fronts_a_real_backend(tmp_path):
    """``python -m labkit.node.cri.server`` as its own process; the native backend forks containers
    from a worker process, because a process with gRPC threads cannot fork safely."""
    import os
    import time

    from labkit import paths

    backend = "native" if paths.is_root() else "simulated"
    sock = tmp_path / "node.sock"
    proc = subprocess.Popen([sys.executable, "-m", "labkit.node.cri.server", "--socket", str(sock), "--backend", backend],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.1)
        rt = RemoteRuntime(f"unix://{sock}")
        assert rt.version().runtime_name == backend
        sc = PodSandboxConfig(name="lk-test-cri", namespace="test-node-cri")
        sid = rt.run_pod_sandbox(sc)
        try:
            cid = rt.create_container(sid, ContainerConfig(name="c", image="busybox", command=["sh", "-c", "echo hi"]), sc)
            rt.start_container(cid)
            for _ in range(50):
                if rt.container_status(cid).state == ContainerState.EXITED:
                    break
                time.sleep(0.1)
            st = rt.container_status(cid)
            assert st.state == ContainerState.EXITED and st.exit_code == 0
            assert rt.logs(cid) == b"hi\n"
            rt.remove_container(cid)
        finally:
            rt.stop_pod_sandbox(sid)
            rt.remove_pod_sandbox(sid)
        assert not [s for s in rt.list_pod_sandboxes() if s.id == sid]
        rt.close()
    finally:
        proc.terminate()
        proc.wait(10)
    assert not sock.exists()
