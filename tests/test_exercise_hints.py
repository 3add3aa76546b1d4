"""The near misses a learner makes in the container and store labs' exercises are answered with a
hint that names what is still wrong (tests/test_exercises.py proves the right answers pass)."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator

import pytest

from labkit.practice import Target, exercise
from labkit.practice import containers as box

root_only = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                               reason="real containers need root")


@pytest.fixture
def target(tmp_path) -> Iterator[Target]:  # noqa: ANN001
    t = Target(workdir=tmp_path / "work", owner="hint")  # each test names its own container
    t.workdir.mkdir(parents=True)
    yield t


def _until_exited(name: str) -> None:
    for _ in range(400):
        found = box.find(name)
        if found is not None and not found.running:
            return
        time.sleep(0.025)


@root_only
def test_a_container_left_with_its_default_hostname_is_named_in_the_hint(target: Target) -> None:
    name = target.name("box")
    try:
        box.run_detached(name, ["sleep", "60"])
        v = exercise("1.1").verify(target)
        assert not v.passed and f"hostname {name!r}" in v.message and "'inside'" in v.message
    finally:
        box.remove(name)


@root_only
def test_a_container_that_exits_under_its_limit_is_not_an_oom_kill(target: Target) -> None:
    name = target.name("oom")
    try:
        box.run_detached(name, ["true"], memory="32m")
        _until_exited(name)
        v = exercise("2.1").verify(target)
        assert not v.passed and "not by the OOM killer" in v.message
    finally:
        box.remove(name)


@root_only
def test_the_default_capabilities_keep_chroot(target: Target) -> None:
    from labkit.images import ImageStore
    from labkit.oci import spec
    from labkit.oci.bundle import Bundle
    from labkit.oci.native import NativeContainer

    bundle = Bundle.create(target.workdir / "b", spec.make_config(["sleep", "60"]))
    store = ImageStore()
    store.prepare_rootfs(store.ensure("busybox"), bundle.rootfs, overlay=False)
    c = NativeContainer(bundle.path, target.name("nochroot"), detach=True)
    try:
        c.create(start_now=True)
        v = exercise("4.1").verify(target)
        assert not v.passed and "still has CAP_SYS_CHROOT in CapBnd" in v.message
    finally:
        c.delete(force=True)


def test_a_configmap_written_once_has_one_revision(target: Target) -> None:
    from kubernetes import client

    from labkit.controlplane.apiserver import APIServer

    with APIServer(f"sqlite:{target.workdir / 'history.db'}") as api:
        cfg = client.Configuration()
        cfg.host = api.url
        client.CoreV1Api(client.ApiClient(cfg)).create_namespaced_config_map(
            "default", {"metadata": {"name": "counter"}, "data": {"n": "0"}})
    v = exercise("10.2").verify(target)
    assert not v.passed and "1 row(s)" in v.message and "change it three times" in v.message


def test_a_key_deleted_by_hand_is_not_an_expired_lease(target: Target) -> None:
    import requests

    from labkit import system_parts
    from labkit.controlplane.store.etcd_server import EtcdCluster

    if not system_parts.which("etcd"):
        pytest.skip("needs etcd")
    cluster = EtcdCluster(members=1, data_dir_path=target.workdir / "single")
    cluster.start()
    try:
        url = cluster.endpoints[0]
        key = base64.b64encode(b"/ex/session").decode()
        requests.post(f"{url}/v3/kv/put", json={"key": key, "value": key}, timeout=5).raise_for_status()
        still = exercise("11.2").verify(target)
        requests.post(f"{url}/v3/kv/deleterange", json={"key": key}, timeout=5).raise_for_status()
        gone = exercise("11.2").verify(target)
    finally:
        cluster.stop()
    assert not still.passed and "no lease" in still.message
    assert not gone.passed and "deleted by hand" in gone.message
