"""Label selectors, tolerations and pod readiness: the shared helpers, and what an empty selector
selects in each place Kubernetes reads one (it is not the same answer everywhere)."""

from __future__ import annotations

import asyncio

import pytest

from labkit.client.pods import is_pod_active, is_pod_ready, is_pod_terminal, pod_requests
from labkit.client.selectors import InvalidSelector, LabelSelector, service_selects, workload_selects
from labkit.client.taints import tolerates, toleration_matches

WEB = {"app": "web", "tier": "a"}


def test_an_empty_query_string_lists_everything():
    assert LabelSelector.parse("").matches(WEB) and LabelSelector.parse(None).matches({})
    assert LabelSelector.parse("").empty


def test_a_label_selector_object_converts_as_kubernetes_does():
    # metav1.LabelSelectorAsSelector: {} is everything, nil is nothing
    assert LabelSelector.from_match({}).matches(WEB)
    assert not LabelSelector.from_match(None).matches(WEB)
    assert not LabelSelector.from_match(None).empty
    sel = {"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "NotIn", "values": ["b"]}, {"key": "gpu", "operator": "DoesNotExist"}]}
    assert LabelSelector.from_match(sel).matches(WEB)
    assert not LabelSelector.from_match(sel).matches({**WEB, "gpu": "1"})
    with pytest.raises(InvalidSelector, match="operator"):
        LabelSelector.from_match({"matchExpressions": [{"key": "a", "operator": "Near"}]})


@pytest.mark.parametrize("selector", [None, {}, {"matchLabels": {}}])
def test_a_workload_with_an_empty_selector_adopts_no_pod(selector):
    assert not workload_selects(selector, WEB)
    assert not workload_selects(selector, {})


def test_a_workload_selector_selects_its_pods():
    sel = {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]}
    assert workload_selects(sel, WEB) and not workload_selects(sel, {"app": "web", "tier": "b"})


@pytest.mark.parametrize("selector", [None, {}])
def test_a_service_without_a_selector_selects_no_pod(selector):
    assert not service_selects(selector, WEB)


def test_a_service_selector_is_every_key_equal():
    assert service_selects({"app": "web"}, WEB)
    assert not service_selects({"app": "web", "tier": "b"}, WEB)
    assert not service_selects({"app": "web"}, None)


def test_the_apiserver_answers_a_bad_selector_with_400():
    from labkit.controlplane.apiserver.errors import StatusError
    from labkit.controlplane.apiserver.selectors import LabelSelector as ServerSelector

    assert ServerSelector.parse("app in (web,db)").matches(WEB)
    with pytest.raises(StatusError) as e:
        ServerSelector.from_match({"matchExpressions": [{"key": "a", "operator": "Near"}]})
    assert e.value.code == 400


class _Recorder:
    def event(self, *a, **kw):
        pass


class _Client:
    """Enough of labkit.client.Client for a controller whose caches the test fills by hand."""

    def __init__(self):
        self.writes: list[tuple] = []

    async def create(self, res, body, namespace=None):
        self.writes.append(("create", res, body))
        return body

    async def update(self, res, body):
        self.writes.append(("update", res, body))
        return body

    async def delete(self, res, name, namespace=None):
        self.writes.append(("delete", res, name))


@pytest.mark.parametrize("selector", [None, {}])
def test_the_endpoints_controller_leaves_selectorless_services_alone(selector):
    from labkit.controlplane.controllers.base import SharedInformers
    from labkit.controlplane.controllers.endpoints import EndpointsController

    async def go(spec_selector):
        client = _Client()
        ctrl = EndpointsController(client, SharedInformers(client), _Recorder())
        spec: dict = {"ports": [{"port": 80}]}
        if spec_selector is not None:
            spec["selector"] = spec_selector
        ctrl.services.cache["default/svc"] = {"metadata": {"name": "svc", "namespace": "default"}, "spec": spec}
        ctrl.pods.cache["default/p"] = {
            "metadata": {"name": "p", "namespace": "default", "labels": {"app": "web"}},
            "status": {"podIP": "10.0.0.5", "conditions": [{"type": "Ready", "status": "True"}]}}
        await ctrl.sync("default/svc")
        return client.writes

    assert asyncio.run(go(selector)) == []  # its Endpoints are the user's to write
    writes = asyncio.run(go({"app": "web"}))
    assert writes[0][0] == "create" and writes[0][2]["subsets"][0]["addresses"][0]["ip"] == "10.0.0.5"


def test_tolerations():
    taint = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
    assert tolerates([{"operator": "Exists"}], taint)  # empty key + Exists tolerates everything
    assert not tolerates([{"operator": "Equal"}], taint)
    assert toleration_matches({"key": taint["key"], "operator": "Exists", "effect": "NoExecute"}, taint)
    assert not toleration_matches({"key": taint["key"], "operator": "Exists", "effect": "NoSchedule"}, taint)
    assert toleration_matches({"key": "k", "value": "v"}, {"key": "k", "value": "v", "effect": "NoSchedule"})
    assert not tolerates([{"key": "k", "value": "w"}], {"key": "k", "value": "v", "effect": "NoSchedule"})


def test_pod_readiness_and_requests():
    pod = {"metadata": {}, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
           "spec": {"containers": [{"resources": {"requests": {"cpu": "250m"}, "limits": {"memory": "64Mi"}}},
                                   {"resources": {"requests": {"cpu": "250m"}}}],
                    "initContainers": [{"resources": {"requests": {"cpu": "1"}}}]}}
    assert is_pod_ready(pod) and is_pod_active(pod)
    assert not is_pod_ready({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}})
    assert not is_pod_active({"metadata": {"deletionTimestamp": "x"}, "status": {"phase": "Running"}})
    assert is_pod_terminal({"status": {"phase": "Failed"}}) and not is_pod_terminal(pod)
    req = pod_requests(pod)
    assert req["cpu"] == 1000 and req["memory"] == 64 << 20 and req["pods"] == 1


def test_a_selector_is_written_as_kubectl_shows_it():
    """Tables and the scale subresource write selectors the way Kubernetes does, expressions too
    (the scale subresource used to drop matchExpressions, so an HPA would select too much)."""
    from labkit.client.selectors import LabelSelector, format_selector

    sel = {"matchLabels": {"app": "web"},
           "matchExpressions": [{"key": "tier", "operator": "In", "values": ["db", "cache"]},
                                {"key": "gpu", "operator": "DoesNotExist"},
                                {"key": "zone", "operator": "Exists"},
                                {"key": "env", "operator": "NotIn", "values": ["dev"]}]}
    text = format_selector(sel)
    assert text == "app=web,env notin (dev),!gpu,tier in (cache,db),zone"
    # the text parses back to a selector that selects the same pods
    back = LabelSelector.parse(text)
    for labels in ({"app": "web", "tier": "db", "zone": "a"}, {"app": "web", "tier": "db"},
                   {"app": "web", "tier": "db", "zone": "a", "gpu": "1"}, {"app": "web", "tier": "x", "zone": "a"}):
        assert back.matches(labels) == LabelSelector.from_match(sel).matches(labels)
    assert format_selector({}) == "" and format_selector(None) == ""
