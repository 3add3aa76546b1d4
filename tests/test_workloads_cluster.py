"""Jobs, StatefulSets and claims on a whole cluster (every component its own process, real containers),
driven by kubectl (1.30 and 1.33) and the official Python client. One cluster for the module."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from support.cluster import kubectl, wait_for
from support.workloads import job, statefulset

from labkit.cluster import Cluster

pytestmark = pytest.mark.slow

KUBECTLS = [p for p in (f"/usr/lib/google-cloud-sdk/bin/kubectl.{v}" for v in ("1.30", "1.33")) if os.path.exists(p)]


@pytest.fixture(scope="module")
def cluster():
    with Cluster(nodes=2, store="sqlite", processes=True) as c:
        yield c


def _get(cluster, *args: str) -> dict:
    return json.loads(kubectl(cluster, "get", *args, "-o", "json"))


def _apply(cluster, tmp_path, obj: dict) -> None:
    f = tmp_path / f"{obj['metadata']['name']}.yaml"
    f.write_text(yaml.safe_dump(obj))
    kubectl(cluster, "apply", "-f", str(f))


def _condition(obj: dict, typ: str) -> dict | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or []
                 if c["type"] == typ and c["status"] == "True"), None)


def test_job_with_parallelism_3_runs_6_completions(cluster, tmp_path):
    _apply(cluster, tmp_path, job("six", "echo done", completions=6, parallelism=3))
    done = wait_for(lambda: _condition(j := _get(cluster, "job", "six"), "Complete") and j, 180,
                    "job six to complete")
    assert done["status"]["succeeded"] == 6 and done["status"].get("active", 0) == 0
    assert done["status"]["startTime"] <= done["status"]["completionTime"]
    pods = _get(cluster, "pods", "-l", "batch.kubernetes.io/job-name=six")["items"]
    assert len(pods) == 6 and all(p["status"]["phase"] == "Succeeded" for p in pods)
    assert all(p["metadata"]["ownerReferences"][0]["kind"] == "Job" for p in pods)
    assert "Complete" in kubectl(cluster, "get", "job", "six")
    kubectl(cluster, "delete", "job", "six")  # background by default for kubectl: the GC takes the pods
    wait_for(lambda: not _get(cluster, "pods", "-l", "batch.kubernetes.io/job-name=six")["items"], 60,
             "the Job's pods removed with it")


def test_job_past_its_backoff_limit_fails(cluster, tmp_path):
    _apply(cluster, tmp_path, job("doomed", "exit 3", backoff_limit=0))
    failed = wait_for(lambda: _condition(j := _get(cluster, "job", "doomed"), "Failed") and j, 120,
                      "job doomed to fail")
    cond = _condition(failed, "Failed")
    assert cond["reason"] == "BackoffLimitExceeded"
    assert failed["status"]["failed"] == 1 and "completionTime" not in failed["status"]
    kubectl(cluster, "delete", "job", "doomed")


def test_claim_without_class_binds_through_the_default_class(cluster, tmp_path):
    classes = _get(cluster, "storageclass")["items"]
    assert any((c["metadata"].get("annotations") or {}).get("storageclass.kubernetes.io/is-default-class") == "true"
               for c in classes)
    _apply(cluster, tmp_path, {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "plain"},
                               "spec": {"accessModes": ["ReadWriteOnce"],
                                        "resources": {"requests": {"storage": "8Mi"}}}})
    bound = wait_for(lambda: (c := _get(cluster, "pvc", "plain"))["status"].get("phase") == "Bound" and c, 60,
                     "the class-less claim bound")
    assert bound["spec"]["storageClassName"] == "standard"
    kubectl(cluster, "delete", "pvc", "plain")


def test_statefulset_pod_deleted_comes_back_with_its_name_and_claim(cluster, tmp_path):
    _apply(cluster, tmp_path, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
                               "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 80}]}})
    _apply(cluster, tmp_path, statefulset("db", replicas=2))
    wait_for(lambda: _get(cluster, "sts", "db")["status"].get("readyReplicas") == 2, 180, "db-0 and db-1 ready")
    pods = {p["metadata"]["name"]: p for p in _get(cluster, "pods", "-l", "app=db")["items"]}
    assert sorted(pods) == ["db-0", "db-1"]
    assert pods["db-0"]["metadata"]["creationTimestamp"] <= pods["db-1"]["metadata"]["creationTimestamp"]
    claim = pods["db-1"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert claim == "data-db-1" and pods["db-1"]["spec"]["hostname"] == "db-1"
    kubectl(cluster, "exec", "db-1", "--", "sh", "-c", "echo kept > /data/note", check=False)
    old_uid = pods["db-1"]["metadata"]["uid"]
    kubectl(cluster, "delete", "pod", "db-1")
    again = wait_for(lambda: (p := _get(cluster, "pod", "db-1"))["metadata"]["uid"] != old_uid
                     and p["status"].get("phase") == "Running" and p, 180, "db-1 made again")
    assert again["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "data-db-1"
    claims = {c["metadata"]["name"]: c for c in _get(cluster, "pvc")["items"]}
    assert claims["data-db-0"]["status"]["phase"] == "Bound" and claims["data-db-1"]["status"]["phase"] == "Bound"
    kubectl(cluster, "scale", "sts", "db", "--replicas=1")
    wait_for(lambda: [p["metadata"]["name"] for p in _get(cluster, "pods", "-l", "app=db")["items"]] == ["db-0"],
             120, "scale down removes the highest ordinal")
    assert "data-db-1" in {c["metadata"]["name"] for c in _get(cluster, "pvc")["items"]}, "claims outlive pods"
    kubectl(cluster, "delete", "sts", "db")
    kubectl(cluster, "delete", "svc", "db")
    kubectl(cluster, "delete", "pvc", "data-db-0", "data-db-1")


@pytest.mark.parametrize("binary", KUBECTLS, ids=lambda p: p.rsplit(".", 2)[-2] + "." + p.rsplit(".", 1)[-1])
def test_kubectl_creates_jobs_and_cronjobs_and_lists_the_workloads(cluster, binary, monkeypatch):
    import support.cluster as sc

    monkeypatch.setattr(sc, "KUBECTL", binary)
    v = binary.rsplit(".", 1)[-1]
    assert "created" in kubectl(cluster, "create", "job", f"hello-{v}", "--image=busybox", "--",
                                "sh", "-c", "echo hello")
    assert "created" in kubectl(cluster, "create", "cronjob", f"tick-{v}", "--image=busybox",
                                "--schedule=*/1 * * * *", "--", "date")
    out = kubectl(cluster, "get", "jobs,cronjobs,ds,sts")
    assert f"job.batch/hello-{v}" in out and f"cronjob.batch/tick-{v}" in out
    assert "COMPLETIONS" in out and "SCHEDULE" in out
    wait_for(lambda: "Complete" in kubectl(cluster, "get", "job", f"hello-{v}"), 120, "the created job completes")
    assert "hello" in kubectl(cluster, "logs", f"job/hello-{v}")
    kubectl(cluster, "delete", "job", f"hello-{v}")
    kubectl(cluster, "delete", "cronjob", f"tick-{v}")
