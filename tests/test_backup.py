"""Backup and disaster recovery: store snapshots under writes, namespace archives, CSI snapshots, DR."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from support.cluster import wait_for

from labkit import paths
from labkit.backup import backup_namespaces, restore_archive, restore_snapshot, snapshot_store
from labkit.backup.disaster import restore_cluster, running_pods, wait_running_again
from labkit.backup.rpo import NumberedWriter, report
from labkit.client.blocking import BlockingClient
from labkit.client.kubeconfig import write_kubeconfig
from labkit.controlplane.apiserver import APIServer
from labkit.controlplane.store import open_store

needs_root = pytest.mark.skipif(not paths.is_root(), reason="CSI volumes are bind mounts: they need root")
PREFIX = "/registry/configmaps/rpo/"


def _etcd_or_skip():
    if not (shutil.which("etcd") and shutil.which("etcdctl")):
        pytest.skip("etcd and etcdctl are not installed (apt-get install etcd-server etcd-client)")
    from labkit.controlplane.store.etcd_server import EtcdCluster

    return EtcdCluster(1)


@pytest.mark.parametrize("backend", ["sqlite", "etcd"])
def test_snapshot_taken_under_writes_is_consistent_and_restores(backend, tmp_path):
    etcd = None
    if backend == "etcd":
        etcd = _etcd_or_skip()
        etcd.start()
        url = etcd.url
    else:
        url = f"sqlite:{tmp_path / 'live.db'}"
    store = open_store(url)
    restored = None
    try:
        writer = NumberedWriter(lambda n: store.create(f"{PREFIX}n{n:06d}", b"{}")).start(at_least=30)
        before = writer.acked
        info = snapshot_store(url, tmp_path / "snap.db")
        after = writer.acked
        wait_for(lambda: writer.acked > after + 20, 10, "writes after the snapshot", every=0.01)
        total = writer.stop()
        restored = restore_snapshot(tmp_path / "snap.db", tmp_path / ("fresh.db" if backend == "sqlite" else "fresh"))
        fresh = open_store(restored.url)
        kvs, _ = fresh.list(PREFIX)
        fresh.close()
    finally:
        store.close()
        if restored is not None:
            restored.stop()
        if etcd is not None:
            etcd.stop()
    rpo = report(before, after, total, [int(kv.key.rsplit("n", 1)[1]) for kv in kvs])
    assert info.backend == backend and info.revision > 0
    assert rpo.contiguous, "a consistent snapshot holds writes 0..k-1 with no gap"
    assert rpo.lost_before == 0 and rpo.restored >= before, "every write acknowledged before the snapshot is kept"
    assert rpo.restored <= after + 1, "nothing acknowledged after the snapshot returned is in it"
    assert rpo.lost == total - rpo.restored > 0


def test_snapshot_of_a_memory_store_says_what_to_do_instead(tmp_path):
    with pytest.raises(ValueError, match="object backup"):
        snapshot_store("memory", tmp_path / "x.db")
    with pytest.raises(FileNotFoundError, match="labkit backup create"):
        restore_snapshot(tmp_path / "missing.db", tmp_path / "new.db")


def test_cli_snapshots_a_store_and_restores_it_into_a_new_one(tmp_path):
    from click.testing import CliRunner

    from labkit.cli.backup import backup

    store = open_store(f"sqlite:{tmp_path / 'live.db'}")
    store.create("/registry/configmaps/default/kept", b"{}")
    store.close()
    runner = CliRunner()
    made = runner.invoke(backup, ["create", "--store", f"sqlite:{tmp_path / 'live.db'}", str(tmp_path / "s.db")])
    refused = runner.invoke(backup, ["restore", str(tmp_path / "s.db")])
    restored = runner.invoke(backup, ["restore", str(tmp_path / "s.db"), "--into", str(tmp_path / "new.db")])
    assert made.exit_code == 0 and "sqlite snapshot" in made.output, made.output
    assert refused.exit_code != 0 and "--into PATH" in refused.output
    assert restored.exit_code == 0 and f"labkit cluster up --store sqlite:{tmp_path / 'new.db'}" in restored.output
    fresh = open_store(f"sqlite:{tmp_path / 'new.db'}")
    assert fresh.get("/registry/configmaps/default/kept") is not None
    fresh.close()


def _apiserver_client(api: APIServer, path: Path) -> BlockingClient:
    write_kubeconfig(str(path), api.url)
    return BlockingClient(str(path))


def test_namespace_archive_restores_into_another_cluster_with_owners_rewired(tmp_path):
    with APIServer("memory") as a, APIServer("memory") as b:
        src, dst = _apiserver_client(a, tmp_path / "a.kc"), _apiserver_client(b, tmp_path / "b.kc")
        try:
            src.call("create", "namespaces", {"metadata": {"name": "shop"}})
            tmpl = {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
            dep = src.call("create", "deployments", {"metadata": {"name": "web", "namespace": "shop"}, "spec": {
                "replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": tmpl}})
            owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": dep["metadata"]["uid"],
                     "controller": True}
            rs = src.call("create", "replicasets", {"metadata": {"name": "web-1", "namespace": "shop",
                                                                 "ownerReferences": [owner]},
                                                    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                                                             "template": tmpl}})
            src.call("create", "pods", {"metadata": {"name": "web-1-a", "namespace": "shop", "labels": {"app": "web"},
                                                     "ownerReferences": [{**owner, "kind": "ReplicaSet",
                                                                          "name": "web-1", "uid": rs["metadata"]["uid"],
                                                                          "apiVersion": "apps/v1"}]},
                                        "spec": {"nodeName": "old-node", **tmpl["spec"]}})
            kept = src.call("create", "services", {"metadata": {"name": "web", "namespace": "shop"}, "spec": {
                "selector": {"app": "web"}, "ports": [{"port": 80}]}})
            taken = src.call("create", "services", {"metadata": {"name": "db", "namespace": "shop"}, "spec": {
                "selector": {"app": "db"}, "ports": [{"port": 5432}]}})
            # the other cluster already uses db's address for a Service of its own
            dst.call("create", "services", {"metadata": {"name": "other", "namespace": "default"}, "spec": {
                "clusterIP": taken["spec"]["clusterIP"], "ports": [{"port": 1}]}})

            taken_summary = backup_namespaces(["shop"], tmp_path / "shop.tar.gz", str(tmp_path / "a.kc"))
            summary = restore_archive(tmp_path / "shop.tar.gz", str(tmp_path / "b.kc"))

            dep2 = dst.call("get", "deployments", "web", "shop")
            rs2 = dst.call("get", "replicasets", "web-1", "shop")
            pod2 = dst.call("get", "pods", "web-1-a", "shop")
            web2 = dst.call("get", "services", "web", "shop")
            db2 = dst.call("get", "services", "db", "shop")
        finally:
            src.close()
            dst.close()
    assert taken_summary.counts["pods"] == 1 and summary.counts["replicasets"] == 1
    assert rs2["metadata"]["ownerReferences"][0]["uid"] == dep2["metadata"]["uid"] != dep["metadata"]["uid"]
    assert pod2["metadata"]["ownerReferences"][0]["uid"] == rs2["metadata"]["uid"] != rs["metadata"]["uid"]
    assert not pod2["spec"].get("nodeName"), "the other cluster's scheduler places the pod"
    assert pod2["status"].get("phase") == "Pending", "the old status was dropped"
    assert web2["spec"]["clusterIP"] == kept["spec"]["clusterIP"], "a free ClusterIP is kept"
    assert db2["spec"]["clusterIP"] != taken["spec"]["clusterIP"], "a taken ClusterIP is reallocated"
    assert any("reallocated" in n for n in summary.notes)


def test_a_missing_namespace_is_a_clear_error(tmp_path):
    with APIServer("memory") as a:
        write_kubeconfig(str(tmp_path / "a.kc"), a.url)
        with pytest.raises(ValueError, match="does not exist"):
            backup_namespaces(["nope"], tmp_path / "x.tar.gz", str(tmp_path / "a.kc"))


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl is not installed")
def test_kubectl_gets_volumesnapshots_and_refuses_one_without_a_source(tmp_path):
    import subprocess

    with APIServer("memory") as a:
        client = _apiserver_client(a, tmp_path / "a.kc")
        client.call("create", "volumesnapshots", {"metadata": {"name": "s1"}, "spec": {
            "source": {"persistentVolumeClaimName": "data"}}}, "default")
        client.close()

        def kubectl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
            return subprocess.run(["kubectl", "--kubeconfig", str(tmp_path / "a.kc"), *args], capture_output=True,
                                  text=True, input=stdin, timeout=30)

        got = kubectl("get", "volumesnapshot")
        bad = kubectl("create", "-f", "-", stdin="apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshot\n"
                                                 "metadata: {name: bad}\nspec: {source: {}}\n")
    assert got.returncode == 0, got.stderr
    header, row = got.stdout.splitlines()[:2]
    assert header.split()[:3] == ["NAME", "READYTOUSE", "SOURCEPVC"] and row.split()[:2] == ["s1", "data"]
    assert bad.returncode != 0 and "exactly one of persistentVolumeClaimName" in bad.stderr


def test_hostpath_driver_snapshots_a_volume_and_makes_a_new_one_from_it(tmp_path):
    from labkit.csi.client import CSIClient, CSIError
    from labkit.node.csi.driver import CSIDriverServer

    with CSIDriverServer(tmp_path / "csi.sock", tmp_path / "volumes") as server:
        csi = CSIClient(server.endpoint)
        try:
            vol = csi.create_volume("v1", 1 << 20)
            Path(vol.volume_context["path"], "f.txt").write_text("before")
            snap = csi.create_snapshot("s1", "v1")
            again = csi.create_snapshot("s1", "v1")  # idempotent: the same name is the same snapshot
            Path(vol.volume_context["path"], "f.txt").write_text("after")
            copy = csi.create_volume("v2", 1 << 20, from_snapshot="s1")
            with pytest.raises(CSIError) as missing:
                csi.create_volume("v3", 1 << 20, from_snapshot="nope")
            csi.delete_snapshot("s1")
            csi.delete_snapshot("s1")  # deleting twice is fine
        finally:
            csi.close()
    assert snap.ready_to_use and snap.size_bytes == len("before") and again.snapshot_id == "s1"
    assert Path(copy.volume_context["path"], "f.txt").read_text() == "before"
    assert copy.content_source.snapshot.snapshot_id == "s1"
    assert missing.value.code == "NOT_FOUND"
    assert not (tmp_path / "volumes-snapshots" / "s1").exists()


# --- on a real cluster: CSI snapshots, and the disaster --------------------------------------------

def _pod(name: str, claim: str, script: str, restart: str = "OnFailure") -> dict:
    return {"metadata": {"name": name}, "spec": {
        "restartPolicy": restart, "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": claim}}],
        "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", script],
                        "volumeMounts": [{"name": "d", "mountPath": "/d"}]}]}}


def _claim(name: str, snapshot: str | None = None) -> dict:
    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}}
    if snapshot:
        spec["dataSource"] = {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": snapshot}
    return {"metadata": {"name": name}, "spec": spec}


def _phase(client: BlockingClient, name: str) -> str:
    return (client.call("get", "pods", name, "default").get("status") or {}).get("phase", "")


def _log(client: BlockingClient, name: str) -> str:
    return client.call("request", "GET", f"/api/v1/namespaces/default/pods/{name}/log")


def _tidy(client: BlockingClient) -> None:
    """Claims go (their volumes with them, reclaim Delete) and snapshots go (DeleteSnapshot)."""
    for plural in ("pods", "volumesnapshots", "persistentvolumeclaims"):
        for o in client.call("list", plural, "default")["items"]:
            client.call("delete", plural, o["metadata"]["name"], "default")
    wait_for(lambda: not client.call("list", "persistentvolumes")["items"]
             and not client.call("list", "volumesnapshotcontents")["items"], 30, "volumes and snapshots deleted")


@needs_root
def test_claim_restored_from_a_volume_snapshot_has_the_data():
    from labkit.cluster import Cluster

    with Cluster(nodes=1, processes=False) as c:
        client = BlockingClient(c.kubeconfig)
        try:
            client.call("create", "persistentvolumeclaims", _claim("data"))
            client.call("create", "pods", _pod("writer", "data", "echo kept-by-snapshot > /d/f.txt"))
            wait_for(lambda: _phase(client, "writer") == "Succeeded", 30, "writer done")
            client.call("create", "volumesnapshots", {"metadata": {"name": "s1"},
                                                      "spec": {"source": {"persistentVolumeClaimName": "data"}}})
            wait_for(lambda: (client.call("get", "volumesnapshots", "s1", "default").get("status") or {})
                     .get("readyToUse"), 30, "snapshot ready")
            client.call("create", "pods", _pod("writer2", "data", "echo changed-later > /d/f.txt"))
            wait_for(lambda: _phase(client, "writer2") == "Succeeded", 30, "second writer done")
            client.call("create", "persistentvolumeclaims", _claim("restored", snapshot="s1"))
            client.call("create", "pods", _pod("reader", "restored", "cat /d/f.txt"))
            wait_for(lambda: _phase(client, "reader") == "Succeeded", 30, "reader done")
            vs = client.call("get", "volumesnapshots", "s1", "default")
            content = client.call("get", "volumesnapshotcontents", vs["status"]["boundVolumeSnapshotContentName"])
            assert _log(client, "reader").strip() == "kept-by-snapshot"
            assert content["spec"]["source"]["volumeHandle"].startswith("pvc-")
            assert content["status"]["snapshotHandle"] == f"snapshot-{vs['metadata']['uid']}"
            assert vs["spec"]["volumeSnapshotClassName"] == "csi-hostpath-snapclass"
            _tidy(client)
        finally:
            client.close()


@needs_root
def test_disaster_recovery_brings_the_pod_back_running_with_its_data(tmp_path):
    from labkit.cluster import Cluster

    c = Cluster(nodes=1, processes=False).start()
    fresh = restored = None
    client = BlockingClient(c.kubeconfig)
    try:
        client.call("create", "persistentvolumeclaims", _claim("notes"))
        client.call("create", "pods", _pod("notes", "notes", "echo $(hostname) >> /d/log; cat /d/log; "
                                                   "trap 'exit 0' TERM; while true; do sleep 1; done", "Always"))
        wait_for(lambda: running_pods(c.kubeconfig, ["default"]), 30, "pod running")
        writer = NumberedWriter(lambda n: client.call("create", "configmaps", {"metadata": {"name": f"n-{n:05d}"}},
                                                      "default")).start(at_least=10)
        before = writer.acked
        snapshot_store(c.store_url, tmp_path / "snap.db")
        after = writer.acked
        wait_for(lambda: writer.acked > after + 5, 10, "writes after the snapshot", every=0.01)
        pods = running_pods(c.kubeconfig, ["default"])
        total = writer.stop()
        client.close()
        c.stop()  # the disaster: every component gone, the store file deleted with the cluster's folder
        assert not Path(c.store_url.partition(":")[2]).exists()

        since = time.monotonic()
        fresh, restored = restore_cluster(tmp_path / "snap.db", nodes=1, processes=False)
        rto = wait_running_again(fresh.kubeconfig, pods, since, timeout=60)
        client = BlockingClient(fresh.kubeconfig)
        numbers = [int(o["metadata"]["name"][2:]) for o in client.call("list", "configmaps", "default")["items"]
                   if o["metadata"]["name"].startswith("n-")]
        rpo = report(before, after, total, numbers)
        assert rto < 60
        # the new container appended a second line to the file the first one wrote: the volume's data survived
        wait_for(lambda: _log(client, "notes").split() == ["notes", "notes"], 10, "both runs' lines")
        assert rpo.contiguous and rpo.lost_before == 0 and rpo.lost > 0
        _tidy(client)
    finally:
        client.close()
        c.stop()
        if fresh is not None:
            fresh.stop()
        if restored is not None:
            restored.stop()
