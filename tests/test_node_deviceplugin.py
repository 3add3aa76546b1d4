"""Device plugins over real gRPC: Register, ListAndWatch, Allocate, health changes, bad requests."""

from __future__ import annotations

import os

import grpc
import pytest

from labkit.node.deviceplugin import DeviceManager, SampleDevicePlugin
from labkit.node.deviceplugin import api_pb2 as pb
from labkit.node.deviceplugin import api_pb2_grpc as pb_grpc
from labkit.node.kubelet.plugins import PluginError

GPU = "nvidia.com/gpu"


@pytest.fixture
def node(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_STATE", str(tmp_path / "state"))
    changes = []
    mgr = DeviceManager(tmp_path / "device-plugins", on_change=changes.append)
    plugin = SampleDevicePlugin(mgr.dir, GPU, count=2, real=False).start()
    assert mgr.wait_for(GPU, 2)
    yield mgr, plugin, changes
    plugin.stop()
    mgr.close()


def pod(uid: str, gpus: int) -> tuple[dict, dict]:
    c = {"name": "train", "resources": {"limits": {GPU: str(gpus), "cpu": "1"}}}
    return {"metadata": {"name": uid, "uid": uid}, "spec": {"containers": [c]}}, c


def test_registration_advertises_the_extended_resource(node):
    mgr, plugin, changes = node
    assert mgr.capacity() == {GPU: 2}
    assert [e[0] for e in mgr.events[:2]] == ["Register", "ListAndWatch"]
    assert changes[-1] == {GPU: 2}  # the kubelet would now update the Node's allocatable
    assert not plugin.real and "simulated" in plugin.kind


def test_allocate_gives_env_device_nodes_and_mounts(node):
    mgr, plugin, _ = node
    p, c = pod("p1", 1)
    alloc = mgr.allocate(p, c)
    assert alloc.env["NVIDIA_VISIBLE_DEVICES"] == "LK-GPU-0"
    assert alloc.devices[0].container_path == "/dev/nvidia0"
    assert os.path.exists(alloc.devices[0].host_path)  # a real device node the runtime can pass in
    assert alloc.mounts[0].container_path == "/run/labkit-gpu" and alloc.mounts[0].readonly
    assert "LK-GPU-0" in open(os.path.join(alloc.mounts[0].host_path, "devices.json")).read()
    # a second pod gets the other GPU, a third finds none free
    assert mgr.allocate(*pod("p2", 1)).env["NVIDIA_VISIBLE_DEVICES"] == "LK-GPU-1"
    with pytest.raises(PluginError, match="Requested: 1, Available: 0") as exc:
        mgr.allocate(*pod("p3", 1))
    assert exc.value.reason == "UnexpectedAdmissionError"
    again = mgr.allocate(p, c)  # p1's container restarts: it keeps its GPU, and takes no other
    assert again.env["NVIDIA_VISIBLE_DEVICES"] == "LK-GPU-0"
    assert mgr.allocated()["p1"] == {GPU: ["LK-GPU-0"]}
    mgr.release_pod(p)  # p1 deleted: its GPU is free again
    assert mgr.allocate(*pod("p3", 1)).env["NVIDIA_VISIBLE_DEVICES"] == "LK-GPU-0"


def test_more_gpus_than_exist_is_refused_clearly(node):
    mgr, _, _ = node
    with pytest.raises(PluginError, match="Requested: 3, Available: 2"):
        mgr.allocate(*pod("big", 3))
    assert mgr.allocated() == {}


def test_unhealthy_device_shrinks_allocatable(node):
    mgr, plugin, changes = node
    plugin.set_health("LK-GPU-1", healthy=False)
    assert mgr.wait_for(GPU, 1)
    assert mgr.total() == {GPU: 2} and mgr.capacity() == {GPU: 1}
    assert changes[-1] == {GPU: 1}
    with pytest.raises(PluginError, match="Available: 1"):
        mgr.allocate(*pod("two", 2))
    plugin.set_health("LK-GPU-1", healthy=True)
    assert mgr.wait_for(GPU, 2)


def test_plugin_going_away_removes_the_resource(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_STATE", str(tmp_path / "state"))
    mgr = DeviceManager(tmp_path / "dp")
    plugin = SampleDevicePlugin(mgr.dir, GPU, count=1, real=False).start()
    try:
        assert mgr.wait_for(GPU, 1)
        plugin.stop()
        assert mgr.wait_for(GPU, None)  # no plugin: no resource
        assert ("Disconnected", GPU) in mgr.events
        with pytest.raises(PluginError, match="no device plugin is registered"):
            mgr.allocate(*pod("p", 1))
    finally:
        mgr.close()
    assert os.listdir(mgr.dir) == []  # sockets removed


def test_bad_registrations_are_refused(tmp_path):
    mgr = DeviceManager(tmp_path / "dp")
    try:
        with grpc.insecure_channel(f"unix:{mgr.socket}") as ch:
            stub = pb_grpc.RegistrationStub(ch)
            with pytest.raises(grpc.RpcError) as exc:
                stub.Register(pb.RegisterRequest(version="v1alpha", endpoint="x.sock", resource_name=GPU))
            assert "not supported" in exc.value.details()
            with pytest.raises(grpc.RpcError) as exc:
                stub.Register(pb.RegisterRequest(version="v1beta1", endpoint="x.sock", resource_name="gpu"))
            assert "extended" in exc.value.details()
    finally:
        mgr.close()


def test_pod_without_devices_gets_nothing(node):
    mgr, _, _ = node
    alloc = mgr.allocate({"metadata": {"uid": "u"}}, {"name": "c", "resources": {"limits": {"cpu": "1"}}})
    assert alloc.env == {} and alloc.devices == [] and mgr.allocated() == {}


def test_real_gpus_come_from_nvidia_smi(tmp_path, monkeypatch):
    """With nvidia-smi on PATH the plugin advertises the GPUs it lists, by UUID, with /dev/nvidiaN.
    (A stand-in nvidia-smi prints what the real one prints for --query-gpu=index,uuid,name.)"""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho '0, GPU-11111111-aaaa, NVIDIA H200'\necho '1, GPU-22222222-bbbb, NVIDIA H200'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("LABKIT_STATE", str(tmp_path / "state"))
    mgr = DeviceManager(tmp_path / "dp")
    plugin = SampleDevicePlugin(mgr.dir, GPU, real=True).start()
    try:
        assert plugin.real and "nvidia-smi" in plugin.kind
        assert mgr.wait_for(GPU, 2)
        alloc = mgr.allocate(*pod("p", 1))
        assert alloc.env["NVIDIA_VISIBLE_DEVICES"] == "GPU-11111111-aaaa"
        assert [(d.host_path, d.container_path) for d in alloc.devices] == [("/dev/nvidia0", "/dev/nvidia0")]
    finally:
        plugin.stop()
        mgr.close()


def test_real_gpus_asked_for_but_absent_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi here
    with pytest.raises(RuntimeError, match="nvidia-smi lists no GPU"):
        SampleDevicePlugin(tmp_path, GPU, real=True)
