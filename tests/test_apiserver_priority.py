"""PriorityClasses and the Priority admission step, against an apiserver alone (no kubelets)."""

from __future__ import annotations

import json
import subprocess

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from support.apiserver import kubeconfig, kubectls, pod


def pclass(name: str, value: int, default: bool = False, policy: str | None = None) -> dict:
    body = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
            "value": value, "globalDefault": default}
    if policy:
        body["preemptionPolicy"] = policy
    return body


@pytest.fixture()
def classes(kc):
    sched = client.SchedulingV1Api(kc)
    made: list[str] = []

    def make(*args, **kw) -> dict:
        body = pclass(*args, **kw)
        sched.create_priority_class(body)
        made.append(body["metadata"]["name"])
        return body
    yield make
    for name in made:
        sched.delete_priority_class(name)


def test_system_classes_exist(kc):
    values = {pc.metadata.name: pc.value for pc in client.SchedulingV1Api(kc).list_priority_class().items}
    assert values["system-cluster-critical"] == 2000000000
    assert values["system-node-critical"] == 2000001000


def test_missing_class_refused_with_kubernetes_message(kc, ns):
    body = pod("orphan")
    body["spec"]["priorityClassName"] = "does-not-exist"
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(kc).create_namespaced_pod(ns, body)
    status = json.loads(err.value.body)
    assert err.value.status == 403 and status["reason"] == "Forbidden"
    assert status["message"] == 'pods "orphan" is forbidden: no PriorityClass with name does-not-exist was found'


def test_priority_resolved_from_class(kc, ns, classes):
    classes("batch-low", 100, policy="Never")
    body = pod("low")
    body["spec"]["priorityClassName"] = "batch-low"
    created = client.CoreV1Api(kc).create_namespaced_pod(ns, body)
    assert created.spec.priority == 100 and created.spec.preemption_policy == "Never"
    raw = client.ApiClient().sanitize_for_serialization(created)
    del raw["spec"]["priority"]  # a client that PUTs the pod back without it
    assert client.CoreV1Api(kc).replace_namespaced_pod("low", ns, raw).spec.priority == 100
    crit = pod("crit")
    crit["spec"]["priorityClassName"] = "system-node-critical"
    assert client.CoreV1Api(kc).create_namespaced_pod(ns, crit).spec.priority == 2000001000
    wrong = pod("wrong")
    wrong["spec"].update(priorityClassName="batch-low", priority=5)
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(kc).create_namespaced_pod(ns, wrong)
    assert "the integer value of priority (5) must not be provided in pod spec" in json.loads(err.value.body)["message"]


def test_global_default_and_zero(kc, ns, classes):
    core = client.CoreV1Api(kc)
    plain = core.create_namespaced_pod(ns, pod("before"))
    assert plain.spec.priority == 0 and not plain.spec.priority_class_name
    classes("everyday", 1000, default=True)
    after = core.create_namespaced_pod(ns, pod("after"))
    assert after.spec.priority == 1000 and after.spec.priority_class_name == "everyday"
    assert after.spec.preemption_policy == "PreemptLowerPriority"
    with pytest.raises(ApiException) as err:  # at most one global default
        client.SchedulingV1Api(kc).create_priority_class(pclass("another", 5, default=True))
    assert err.value.status == 403
    assert "PriorityClass everyday is already marked as default. Only one default can exist" in err.value.body


def test_class_rules(kc):
    sched = client.SchedulingV1Api(kc)
    for body, field in ((pclass("too-high", 2_000_000_000), "value"), (pclass("system-mine", 1), "metadata.name")):
        with pytest.raises(ApiException) as err:
            sched.create_priority_class(body)
        assert err.value.status == 422
        assert [c["field"] for c in json.loads(err.value.body)["details"]["causes"]] == [field]


@pytest.mark.parametrize("binary", kubectls(("1.33",)))
def test_kubectl_create_priorityclass_and_refused_pod(api, binary, tmp_path):
    cfg = kubeconfig(tmp_path / "kubeconfig", api.url)

    def kubectl(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([binary, "--kubeconfig", str(cfg), *args], capture_output=True, text=True, timeout=60)
    try:
        assert kubectl("create", "priorityclass", "zero", "--value", "0").returncode == 0
        rows = kubectl("get", "pc", "zero").stdout.split()
        assert rows[-4:] == ["zero", "0", "false", rows[-1]]
        p = kubectl("run", "x", "--image", "busybox", "--overrides",
                    '{"spec": {"priorityClassName": "nope"}}')
        assert p.returncode != 0
        assert 'pods "x" is forbidden: no PriorityClass with name nope was found' in p.stderr
    finally:
        kubectl("delete", "pc", "zero")
