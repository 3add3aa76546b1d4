"""Ordered work on hollow nodes (real apiserver, scheduler and controllers; containers only booked):
a StatefulSet creates, updates and scales down in ordinal order; a DaemonSet rolls within maxUnavailable.
kubectl 1.30 and 1.33 apply both kinds (they used to fail on "failed to check CRD")."""

from __future__ import annotations

import asyncio
import subprocess
import tempfile

import pytest
import yaml
from support.apiserver import KUBECTL_DIR
from support.workloads import daemonset, eventually

from labkit.client import Client
from labkit.client.kubeconfig import write_kubeconfig
from labkit.controlplane.apiserver import APIServer
from labkit.controlplane.controllers.manager import ControllerManager
from labkit.controlplane.scheduler.scheduler import Scheduler
from labkit.node.kubelet.hollow import HollowNodes


def plain_statefulset(name: str, replicas: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"serviceName": name, "replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}, "annotations": {"v": "1"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


def _running(pods: list[dict]) -> list[dict]:
    return [p for p in pods if (p.get("status") or {}).get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")]


def test_statefulset_orders_creation_update_and_scale_down_and_daemonset_rolls():
    with APIServer("memory") as api, tempfile.NamedTemporaryFile(suffix=".kubeconfig") as kc:
        write_kubeconfig(kc.name, api.url)

        async def scenario():
            client = Client(kc.name)
            nodes = HollowNodes(client, 3, prefix="h", lease_interval=1)
            manager = ControllerManager(client, ("statefulset", "daemonset", "garbagecollector"))
            tasks = [asyncio.create_task(Scheduler(client).run()), asyncio.create_task(manager.run())]
            created: list[str] = []
            deleted: list[str] = []

            async def watch_pods(rv: str) -> None:
                """Pod names in the order they were created, and in the order they began to go (a watch
                delivers events in the order the apiserver wrote them)."""
                going: set[str] = set()
                async for typ, p in client.watch("pods", "default", label_selector="app=db", resource_version=rv):
                    uid, name = p["metadata"].get("uid"), p["metadata"].get("name")
                    if typ == "ADDED":
                        created.append(name)
                    if typ in ("MODIFIED", "DELETED") and uid not in going and \
                            (typ == "DELETED" or p["metadata"].get("deletionTimestamp")):
                        going.add(uid)
                        deleted.append(name)

            rv = (await client.list("pods", "default"))["metadata"]["resourceVersion"]
            tasks.append(asyncio.create_task(watch_pods(rv)))
            try:
                await nodes.start()
                await client.create("statefulsets", plain_statefulset("db", 3))

                async def sts_state(ready: int, updated: int | None = None):
                    sts = await client.get("statefulsets", "db", "default")
                    s = sts.get("status") or {}
                    return s.get("observedGeneration") == sts["metadata"]["generation"] and \
                        s.get("readyReplicas") == ready and (updated is None or s.get("updatedReplicas") == updated) \
                        and s
                await eventually(lambda: sts_state(3), 60, "db-0..2 ready")
                order = list(created)
                await client.patch("statefulsets", "db", {"spec": {"template": {"metadata": {
                    "annotations": {"v": "2"}}}}}, "default")
                status = await eventually(lambda: sts_state(3, 3), 60, "all three pods updated")

                async def seen(n: int, names: list[str]):  # the watch may be an event behind
                    return len(names) >= n
                await eventually(lambda: seen(6, created), 10, "the watch showing the three new pods")
                update_order = created[3:]
                mark = len(deleted)
                await client.patch("statefulsets", "db", {"spec": {"replicas": 1}}, "default")

                async def only_db0():
                    items = (await client.list("pods", "default", label_selector="app=db"))["items"]
                    return [p["metadata"]["name"] for p in items] == ["db-0"]
                await eventually(only_db0, 60, "scaled down to db-0")
                await eventually(lambda: seen(mark + 2, deleted), 10, "the watch showing two pods go")
                scale_down = deleted[mark:]

                # a DaemonSet rolling update, one node at a time (maxUnavailable 1)
                await client.create("daemonsets", daemonset("agent"))

                async def agents(rev: str | None = None):
                    items = _running((await client.list("pods", "default", label_selector="app=agent"))["items"])
                    return len(items) == 3 and (rev is None or all(
                        p["metadata"]["labels"]["controller-revision-hash"] == rev for p in items)) and items
                first = await eventually(lambda: agents(), 60, "an agent on each node")
                await client.patch("daemonsets", "agent", {"spec": {"template": {"metadata": {
                    "annotations": {"v": "2"}}}}}, "default")
                ds = await client.get("daemonsets", "agent", "default")
                from labkit.controlplane.controllers.daemonset import template_revision
                rev = template_revision(ds)
                worst = [3]

                async def rolled():
                    items = _running((await client.list("pods", "default", label_selector="app=agent"))["items"])
                    worst[0] = min(worst[0], len(items))
                    return await agents(rev)
                await eventually(rolled, 60, "every agent on the new template")
                return order, update_order, scale_down, status, first, worst[0]
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await nodes.stop()
                await client.close()

        order, update_order, scale_down, status, first, fewest = asyncio.run(scenario())
    assert order == ["db-0", "db-1", "db-2"], "created in ordinal order"
    assert update_order == ["db-2", "db-1", "db-0"], "rolled from the highest ordinal down"
    assert scale_down == ["db-2", "db-1"], "scaled down from the highest ordinal"
    assert status["currentRevision"] == status["updateRevision"]
    assert fewest >= 2, "maxUnavailable 1: never more than one of three agents down during the rollout"


@pytest.mark.parametrize("version", ["1.30", "1.33"])
def test_kubectl_applies_daemonsets_and_statefulsets(api, tmp_path, version):
    binary = KUBECTL_DIR / f"kubectl.{version}"
    if not binary.exists():
        pytest.skip(f"kubectl {version} is not installed")
    from support.apiserver import kubeconfig
    kc = kubeconfig(tmp_path / "kc", api.url)
    name = f"k{version.replace('.', '')}"
    f = tmp_path / "w.yaml"
    f.write_text(yaml.safe_dump_all([daemonset(name), plain_statefulset(name, 1)]))
    out = subprocess.run([str(binary), "--kubeconfig", str(kc), "apply", "-f", str(f)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"daemonset.apps/{name} created" in out.stdout and f"statefulset.apps/{name} created" in out.stdout
    got = subprocess.run([str(binary), "--kubeconfig", str(kc), "get", "ds,sts", "-o", "wide"], capture_output=True,
                         text=True, timeout=60)
    assert "NODE SELECTOR" in got.stdout and name in got.stdout, got.stderr
