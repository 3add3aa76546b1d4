"""The workload kinds against an in-process apiserver: defaults, tables, the DefaultStorageClass step,
which nodes a DaemonSet picks, and the CronJob controller driven by a clock the test moves."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from support.apiserver import kubeconfig
from support.workloads import cronjob, job

from labkit.client import Client
from labkit.client.rest import ApiError
from labkit.controlplane.apiserver.tables import table
from labkit.controlplane.controllers.base import SharedInformers
from labkit.controlplane.controllers.cronjob import CronJobController
from labkit.controlplane.controllers.daemonset import daemon_tolerations, should_run


def run(coro):
    return asyncio.run(coro)


async def _client(api, tmp_path) -> Client:
    return Client(str(kubeconfig(tmp_path / "kc", api.url)))


def test_job_gets_kubernetes_defaults_and_a_selector_on_its_uid(api, tmp_path):
    async def go():
        c = await _client(api, tmp_path)
        try:
            made = await c.create("jobs", job("defaults", "true"))
            with pytest.raises(ApiError) as e:  # a Job's pods must not restart Always
                bad = job("always", "true")
                bad["spec"]["template"]["spec"]["restartPolicy"] = "Always"
                await c.create("jobs", bad)
            return made, e.value
        finally:
            await c.close()

    made, err = run(go())
    uid = made["metadata"]["uid"]
    assert made["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    labels = made["spec"]["template"]["metadata"]["labels"]
    assert labels["batch.kubernetes.io/job-name"] == "defaults" and labels["controller-uid"] == uid
    assert made["spec"]["backoffLimit"] == 6 and made["spec"]["completionMode"] == "NonIndexed"
    assert err.code == 422 and "restartPolicy" in str(err)


def test_claim_without_class_gets_the_default_class_and_an_empty_class_stays_empty(api, tmp_path):
    async def go():
        c = await _client(api, tmp_path)
        try:
            await c.create("storageclasses", {"metadata": {"name": "fast", "annotations": {
                "storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "example.com/x"})
            spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}}
            plain = await c.create("persistentvolumeclaims", {"metadata": {"name": "plain"}, "spec": dict(spec)})
            none = await c.create("persistentvolumeclaims", {"metadata": {"name": "none"},
                                                             "spec": {**spec, "storageClassName": ""}})
            await c.delete("storageclasses", "fast")
            return plain, none
        finally:
            await c.close()

    plain, none = run(go())
    assert plain["spec"]["storageClassName"] == "fast"
    assert none["spec"]["storageClassName"] == ""


def test_tables_show_kubernetes_columns():
    done = {"metadata": {"name": "j", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"completions": 6, "parallelism": 3, "template": {"spec": {"containers": [
                {"name": "w", "image": "busybox"}]}}},
            "status": {"succeeded": 6, "startTime": "2026-01-01T00:00:00Z",
                       "completionTime": "2026-01-01T00:00:42Z",
                       "conditions": [{"type": "Complete", "status": "True"}]}}
    t = table("jobs", [done], {})
    assert [c["name"] for c in t["columnDefinitions"] if c["priority"] == 0] == \
        ["Name", "Status", "Completions", "Duration", "Age"]
    assert t["rows"][0]["cells"][:4] == ["j", "Complete", "6/6", "42s"]
    ds = table("daemonsets", [{"metadata": {"name": "d"}, "spec": {}, "status": {"desiredNumberScheduled": 2}}], {})
    assert [c["name"] for c in ds["columnDefinitions"]][:8] == \
        ["Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age"]
    assert ds["rows"][0]["cells"][1] == 2


def test_daemonset_picks_nodes_by_selector_and_taints_and_runs_on_cordoned_nodes():
    ds = {"spec": {"template": {"spec": {"nodeSelector": {"disk": "ssd"}, "containers": []}}}}
    node = lambda labels, taints=(): {"metadata": {"name": "n", "labels": labels},  # noqa: E731
                                      "spec": {"taints": list(taints)}}
    assert should_run(ds, node({"disk": "ssd"}))
    assert not should_run(ds, node({"disk": "hdd"}))
    assert should_run(ds, node({"disk": "ssd"}, [{"key": "node.kubernetes.io/unschedulable",
                                                  "effect": "NoSchedule"}])), "a cordoned node keeps its daemons"
    gpu = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    assert not should_run(ds, node({"disk": "ssd"}, [gpu]))
    ds["spec"]["template"]["spec"]["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists"}]
    assert should_run(ds, node({"disk": "ssd"}, [gpu]))
    keys = {(t["key"], t["effect"]) for t in daemon_tolerations({})}
    assert ("node.kubernetes.io/not-ready", "NoExecute") in keys
    assert ("node.kubernetes.io/unreachable", "NoExecute") in keys


class Clock:
    def __init__(self, t: datetime):
        self.t = t

    def __call__(self) -> datetime:
        return self.t


def test_cronjob_starts_jobs_on_schedule_forbids_overlap_and_records_its_runs(api, tmp_path):
    """Every minute a Job, without waiting a minute: the controller's clock is the test's."""
    async def go():
        c = await _client(api, tmp_path)
        informers = SharedInformers(c)
        clock = Clock(datetime.now(UTC))
        ctl = CronJobController(c, informers, clock=clock)
        await informers.start()
        try:
            await c.create("cronjobs", cronjob("tick", concurrencyPolicy="Forbid", successfulJobsHistoryLimit=1))

            async def synced(pred):
                for _ in range(100):
                    if pred():
                        return
                    await asyncio.sleep(0.05)
                raise AssertionError("the informer never showed the change")

            async def owned():
                await ctl.sync("default/tick")
                return ctl.owned_jobs(ctl.cronjobs.cache["default/tick"])

            await synced(lambda: "default/tick" in ctl.cronjobs.cache)
            assert await owned() == [], "nothing is due in the minute it was created"
            clock.t += timedelta(minutes=1, seconds=1)
            await ctl.sync("default/tick")
            mine = lambda: [j for j in ctl.owned_jobs(ctl.cronjobs.cache["default/tick"])  # noqa: E731
                            if not j["metadata"].get("deletionTimestamp")]
            await synced(lambda: len(mine()) == 1)
            first = mine()[0]
            clock.t += timedelta(minutes=1)
            await ctl.sync("default/tick")  # Forbid: the first Job still runs
            await asyncio.sleep(0.3)
            assert [j["metadata"]["name"] for j in mine()] == [first["metadata"]["name"]]
            now = clock.t.strftime("%Y-%m-%dT%H:%M:%SZ")
            await c.patch("jobs", first["metadata"]["name"], {"status": {"conditions": [
                {"type": "Complete", "status": "True", "lastTransitionTime": now}],
                "startTime": now, "completionTime": now}}, "default", sub="status")
            await synced(lambda: (ctl.jobs.cache[f"default/{first['metadata']['name']}"].get("status") or {})
                         .get("conditions"))
            await ctl.sync("default/tick")  # the skipped start runs once the first Job finished
            await synced(lambda: len(mine()) == 2)
            cj = await c.get("cronjobs", "tick", "default")
            return first, cj
        finally:
            await informers.stop()
            await c.close()

    first, cj = run(go())
    assert first["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
    assert first["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    assert cj["status"]["lastScheduleTime"] and len(cj["status"]["active"]) == 1
    assert cj["status"]["lastSuccessfulTime"]


def test_cronjob_schedule_is_validated(api, tmp_path):
    async def go():
        c = await _client(api, tmp_path)
        try:
            with pytest.raises(ApiError) as e:
                await c.create("cronjobs", cronjob("bad", schedule="61 * * * *"))
            return e.value
        finally:
            await c.close()

    err = run(go())
    assert err.code == 422 and "spec.schedule" in str(err.body)


def test_official_client_reads_new_daemonsets_and_statefulsets(kc):
    """Fresh objects carry the status counts the client's models require (before any controller ran)."""
    from kubernetes import client
    from support.workloads import daemonset, statefulset

    apps = client.AppsV1Api(kc)
    ds = apps.create_namespaced_daemon_set("default", daemonset("fresh"))
    sts = apps.create_namespaced_stateful_set("default", statefulset("fresh"))
    assert ds.status.desired_number_scheduled == 0 and ds.spec.update_strategy.rolling_update.max_unavailable == 1
    assert sts.status.replicas == 0 and sts.spec.pod_management_policy == "OrderedReady"
    assert apps.read_namespaced_stateful_set("fresh", "default").spec.volume_claim_templates[0].metadata.name == "data"
    apps.delete_namespaced_daemon_set("fresh", "default")
    apps.delete_namespaced_stateful_set("fresh", "default")
