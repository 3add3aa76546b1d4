"""A CSI driver registers through the API (CSIDriver + CSINode), and the PV binder finds the
provisioner there: no socket folders, no node code, only objects the apiserver serves."""

from __future__ import annotations

import asyncio

import pytest

from labkit.client import ApiError, Client
from labkit.client.csinodes import CONTROLLER_ENDPOINT, controller_endpoints
from labkit.client.kubeconfig import write_kubeconfig
from labkit.node.csi.driver import DRIVER_NAME, CSIDriverServer
from labkit.node.csi.registration import register_driver, unregister_driver


@pytest.fixture
def api(tmp_path):
    from labkit.controlplane.apiserver import APIServer

    server = APIServer("memory", port=0).start()
    yield str(write_kubeconfig(tmp_path / "kubeconfig", server.url))
    server.stop()


@pytest.fixture
def driver(tmp_path):
    server = CSIDriverServer(tmp_path / "csi.sock", tmp_path / "volumes", node_id="node-a").start()
    yield server
    server.stop()


async def _until(fn, timeout=15.0):
    for _ in range(int(timeout / 0.1)):
        v = await fn()
        if v:
            return v
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_registration_publishes_csidriver_and_csinode(api, driver):
    assert register_driver(api, "node-a", driver.endpoint) == DRIVER_NAME
    register_driver(api, "node-a", driver.endpoint)  # a kubelet restart registers again: same objects

    async def read():
        async with Client(api) as c:
            return (await c.get("csinodes", "node-a"), (await c.list("csidrivers"))["items"])

    csinode, drivers = asyncio.run(read())
    assert csinode["spec"]["drivers"] == [{"name": DRIVER_NAME, "nodeID": "node-a"}]
    assert csinode["metadata"]["annotations"][CONTROLLER_ENDPOINT + DRIVER_NAME] == driver.endpoint
    assert [d["metadata"]["name"] for d in drivers] == [DRIVER_NAME]
    assert drivers[0]["spec"]["attachRequired"] is False
    assert controller_endpoints([csinode], drivers) == {DRIVER_NAME: [driver.endpoint]}
    assert controller_endpoints([csinode], []) == {}  # no CSIDriver object: not a provisioner

    unregister_driver(api, "node-a", DRIVER_NAME)
    csinode, _ = asyncio.run(read())
    assert csinode["spec"]["drivers"] == [] and CONTROLLER_ENDPOINT + DRIVER_NAME not in csinode["metadata"]["annotations"]


def test_binder_provisions_through_the_driver_a_node_registered(api, driver, tmp_path):
    from labkit.controlplane.controllers.base import SharedInformers
    from labkit.controlplane.controllers.pv_binder import STORAGE_CLASSES, PersistentVolumeBinder

    async def go():
        async with Client(api) as c:
            informers = SharedInformers(c)
            binder = PersistentVolumeBinder(c, informers)  # no provisioners given: read them from the API
            await informers.start()
            task = asyncio.create_task(binder.run())
            try:
                await c.create(STORAGE_CLASSES, {"metadata": {"name": "lk"}, "provisioner": DRIVER_NAME})
                await c.create("persistentvolumeclaims", {
                    "metadata": {"name": "data", "namespace": "default"},
                    "spec": {"storageClassName": "lk", "accessModes": ["ReadWriteOnce"],
                             "resources": {"requests": {"storage": "1Mi"}}}})

                async def why_pending():
                    evs = (await c.list("events", "default"))["items"]
                    return [e["message"] for e in evs if e.get("reason") == "FailedBinding"]
                assert "no node has registered" in (await _until(why_pending))[0]

                # a node killed without unregistering left its address behind: the binder moves past it
                await c.create("csinodes", {"metadata": {"name": "node-0", "annotations": {
                    CONTROLLER_ENDPOINT + DRIVER_NAME: f"unix://{tmp_path}/gone.sock"}},
                    "spec": {"drivers": [{"name": DRIVER_NAME, "nodeID": "node-0"}]}})
                await asyncio.to_thread(register_driver, api, "node-a", driver.endpoint)

                async def bound():
                    claim = await c.get("persistentvolumeclaims", "data", "default")
                    return claim if (claim.get("status") or {}).get("phase") == "Bound" else None
                claim = await _until(bound)
                pv = await c.get("persistentvolumes", claim["spec"]["volumeName"])
                assert pv["spec"]["csi"]["driver"] == DRIVER_NAME
                assert (tmp_path / "volumes" / pv["spec"]["csi"]["volumeHandle"]).is_dir()

                await c.delete("persistentvolumeclaims", "data", "default")

                async def pv_gone():
                    try:
                        await c.get("persistentvolumes", pv["metadata"]["name"])
                        return False
                    except ApiError as exc:
                        return exc.code == 404
                await _until(pv_gone)  # reclaimPolicy Delete: DeleteVolume at the published address
                assert not (tmp_path / "volumes" / pv["spec"]["csi"]["volumeHandle"]).exists()
            finally:
                task.cancel()
                await informers.stop()

    asyncio.run(go())
