"""CSI end to end: the hostpath driver over real gRPC, real bind mounts, claims bound by the binder."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest
from support.cluster import wait_for

from labkit import paths
from labkit.client.kubeconfig import write_kubeconfig
from labkit.csi.client import CSIClient, CSIError
from labkit.node.csi.driver import DRIVER_NAME, CSIDriverServer, is_mounted
from labkit.node.csi.volumeplugin import CSIVolumePlugin
from labkit.node.kubelet.plugins import PluginError

needs_root = pytest.mark.skipif(not paths.is_root(), reason="bind mounts need root")


@pytest.fixture
def driver(tmp_path):
    server = CSIDriverServer(tmp_path / "csi.sock", tmp_path / "volumes", node_id="n1").start()
    client = CSIClient(server.endpoint)
    yield server, client
    client.close()
    server.stop()


def test_identity_and_node_info(driver):
    server, client = driver
    assert client.plugin_info() == (DRIVER_NAME, "0.1.0")
    assert client.probe() is True
    assert client.node_info() == "n1"
    from labkit.csi import csi_pb2 as pb

    caps = client.identity.GetPluginCapabilities(pb.GetPluginCapabilitiesRequest()).capabilities
    assert caps[0].service.type == pb.PluginCapability.Service.CONTROLLER_SERVICE


@needs_root
def test_data_outlives_the_publish(driver, tmp_path):
    server, client = driver
    vol = client.create_volume("pvc-abc", 1 << 20)
    assert vol.volume_id == "pvc-abc" and vol.capacity_bytes == 1 << 20
    assert client.create_volume("pvc-abc", 1 << 20).volume_id == "pvc-abc"  # idempotent
    t1 = tmp_path / "pod1" / "mount"
    client.publish("pvc-abc", str(t1))
    assert is_mounted(t1)
    (t1 / "data.txt").write_text("written by pod 1")
    client.unpublish("pvc-abc", str(t1))
    assert not is_mounted(t1) and not t1.exists()
    t2 = tmp_path / "pod2" / "mount"
    client.publish("pvc-abc", str(t2), readonly=True)
    try:
        assert (t2 / "data.txt").read_text() == "written by pod 1"
        with pytest.raises(OSError):
            (t2 / "other").write_text("x")  # published read-only
        with pytest.raises(CSIError, match="FAILED_PRECONDITION.*still mounted"):
            client.delete_volume("pvc-abc")
    finally:
        client.unpublish("pvc-abc", str(t2))
    client.delete_volume("pvc-abc")
    assert not (tmp_path / "volumes" / "pvc-abc").exists()
    assert server.driver.calls.count("NodePublishVolume") == 2


def test_bad_requests_are_clear(driver, tmp_path):
    _, client = driver
    with pytest.raises(CSIError, match="NOT_FOUND.*does not exist"):
        client.publish("pvc-missing", str(tmp_path / "t"))
    with pytest.raises(CSIError, match="INVALID_ARGUMENT.*not a valid volume id"):
        client.create_volume("../etc", 1)
    assert not (tmp_path / "t").exists()


@needs_root
def test_unmountable_target_is_internal_error_and_leaves_nothing(driver, tmp_path):
    _, client = driver
    client.create_volume("pvc-x", 1)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(CSIError) as exc:
        client.publish("pvc-x", str(blocker / "mount"))
    assert exc.value.code in ("INTERNAL", "UNKNOWN")
    client.delete_volume("pvc-x")


# --- with an API server: claims, the binder, the kubelet's volume hook ------
@pytest.fixture
def api(tmp_path):
    from labkit.controlplane.apiserver import APIServer

    server = APIServer("memory", port=0).start()
    kc = write_kubeconfig(tmp_path / "kubeconfig", server.url)
    yield str(kc)
    server.stop()


class Background:
    """Run the PV binder (an asyncio controller) on its own loop thread, as its process would."""

    def __init__(self, kubeconfig: str, provisioners: dict[str, str]):
        from labkit.client import Client
        from labkit.controlplane.controllers.base import SharedInformers
        from labkit.controlplane.controllers.pv_binder import PersistentVolumeBinder

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def setup():
            self.client = Client(kubeconfig)
            self.informers = SharedInformers(self.client)
            self.binder = PersistentVolumeBinder(self.client, self.informers, provisioners=provisioners)
            await self.informers.start()
            self.task = asyncio.create_task(self.binder.run())

        asyncio.run_coroutine_threadsafe(setup(), self.loop).result(30)

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def stop(self):
        async def down():
            self.task.cancel()
            await self.informers.stop()
            await self.client.close()

        self.call(down())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)




@needs_root
def test_claim_is_provisioned_bound_mounted_and_outlives_pods(api, driver, tmp_path):
    server, _ = driver
    bg = Background(api, {DRIVER_NAME: server.endpoint})
    c = bg.client
    try:
        bg.call(c.create(_sc(), {
            "metadata": {"name": "labkit-hostpath"}, "provisioner": DRIVER_NAME, "reclaimPolicy": "Delete"}))
        bg.call(c.create("persistentvolumeclaims", {
            "metadata": {"name": "data", "namespace": "default"},
            "spec": {"storageClassName": "labkit-hostpath", "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Mi"}}}}))
        claim = wait_for(lambda: _bound(bg, "data"))
        pv = bg.call(c.get("persistentvolumes", claim["spec"]["volumeName"]))
        assert pv["spec"]["csi"]["driver"] == DRIVER_NAME and pv["status"]["phase"] == "Bound"
        assert pv["spec"]["claimRef"]["name"] == "data"

        plugin = CSIVolumePlugin({DRIVER_NAME: server.endpoint}, api, pods_dir=tmp_path / "pods")
        pod = {"metadata": {"name": "w", "namespace": "default", "uid": "uid-1"},
               "spec": {"volumes": [{"name": "store", "persistentVolumeClaim": {"claimName": "data"}}]}}
        paths_ = plugin.mount_pod_volumes(pod)
        assert is_mounted(paths_["store"]) and "kubernetes.io~csi/store/mount" in paths_["store"]
        open(os.path.join(paths_["store"], "note"), "w").write("kept")
        plugin.unmount_pod_volumes(pod)
        assert not (tmp_path / "pods" / "uid-1").exists()
        pod2 = {**pod, "metadata": {**pod["metadata"], "name": "r", "uid": "uid-2"}}
        p2 = plugin.mount_pod_volumes(pod2)["store"]
        assert open(os.path.join(p2, "note")).read() == "kept"  # the next pod sees it
        plugin.unmount_pod_volumes(pod2)

        # deleting the claim releases the volume: reclaimPolicy Delete -> DeleteVolume + PV gone
        bg.call(c.delete("persistentvolumeclaims", "data", "default"))
        wait_for(lambda: not _exists(bg, "persistentvolumes", pv["metadata"]["name"]))
        assert not (tmp_path / "volumes" / pv["spec"]["csi"]["volumeHandle"]).exists()
    finally:
        bg.stop()


@needs_root
def test_static_pv_binds_smallest_fit_and_unbound_claim_fails_mount(api, driver, tmp_path):
    server, client = driver
    bg = Background(api, {})
    c = bg.client
    try:
        for name, size in (("big", "10Gi"), ("small", "2Gi")):
            bg.call(c.create("persistentvolumes", {
                "metadata": {"name": name},
                "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"], "storageClassName": "",
                         "persistentVolumeReclaimPolicy": "Retain",
                         "csi": {"driver": DRIVER_NAME, "volumeHandle": f"static-{name}"}}}))
        for name in ("big", "small"):  # the binder marks new volumes Available
            wait_for(lambda n=name: bg.call(c.get("persistentvolumes", n))["status"]["phase"] == "Available")
        bg.call(c.create("persistentvolumeclaims", {
            "metadata": {"name": "c1", "namespace": "default"},
            "spec": {"storageClassName": "", "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}}))
        assert wait_for(lambda: _bound(bg, "c1"))["spec"]["volumeName"] == "small"
        # a claim nothing can satisfy stays Pending; a pod using it gets FailedMount, nothing mounted
        bg.call(c.create("persistentvolumeclaims", {
            "metadata": {"name": "huge", "namespace": "default"},
            "spec": {"storageClassName": "", "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "100Gi"}}}}))
        client.create_volume("static-small", 1)  # the admin made the static volume beforehand
        plugin = CSIVolumePlugin({DRIVER_NAME: server.endpoint}, api, pods_dir=tmp_path / "pods")
        pod = {"metadata": {"name": "p", "namespace": "default", "uid": "u9"},
               "spec": {"volumes": [{"name": "a", "persistentVolumeClaim": {"claimName": "c1"}},
                                    {"name": "b", "persistentVolumeClaim": {"claimName": "huge"}}]}}
        with pytest.raises(PluginError, match='"huge" is not bound') as exc:
            plugin.mount_pod_volumes(pod)
        assert exc.value.reason == "FailedMount"
        assert not (tmp_path / "pods" / "u9").exists()  # volume "a" was mounted, then undone
        # the static volume disappears from the driver: a CSI error, not a hang
        client.delete_volume("static-small")
        with pytest.raises(PluginError, match="NOT_FOUND"):
            plugin.mount_pod_volumes({**pod, "spec": {"volumes": pod["spec"]["volumes"][:1]}})
        with pytest.raises(PluginError, match='"nope" not found'):
            plugin.mount_pod_volumes({**pod, "spec": {"volumes": [
                {"name": "x", "persistentVolumeClaim": {"claimName": "nope"}}]}})
    finally:
        bg.stop()


def _sc():
    from labkit.controlplane.controllers.pv_binder import STORAGE_CLASSES

    return STORAGE_CLASSES


def _bound(bg, name):
    claim = bg.call(bg.client.get("persistentvolumeclaims", name, "default"))
    return claim if (claim.get("status") or {}).get("phase") == "Bound" else None


def _exists(bg, res, name):
    from labkit.client import ApiError

    try:
        bg.call(bg.client.get(res, name))
        return True
    except ApiError as exc:
        if exc.code == 404:
            return False
        raise
