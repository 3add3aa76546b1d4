"""The API under fuzzing: a bounded campaign with a fixed seed, and the bugs campaigns have found.

``support.apifuzz`` generates hostile requests with hypothesis (every served resource and verb,
adversarial bodies, headers, query parameters, content types and names) and checks each answer:
never a 5xx, never a hang, always a well-formed Status or object, the store's revision unchanged
by a rejected request, the server alive. ``benchmarks/bench_fuzz.py`` runs a longer campaign.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from support.apifuzz import Campaign, run

EXAMPLES = 2000


@pytest.fixture(scope="module")
def fuzzed() -> Iterator:
    from labkit.controlplane.apiserver import APIServer

    with APIServer("memory", compact_interval=None, bookmark_interval=0.5) as server:
        yield server


def test_a_bounded_campaign_keeps_every_invariant(fuzzed):
    campaign = Campaign(fuzzed.url, revision=lambda: fuzzed.store.revision,
                        alive=lambda: requests.get(fuzzed.url + "/healthz", timeout=5).text == "ok",
                        watches_left=8)
    campaign.setup()
    run(campaign, EXAMPLES)
    assert campaign.violations == []
    assert campaign.sent >= EXAMPLES * 0.95  # hypothesis may skip a few duplicates
    assert sum(n for code, n in campaign.codes.items() if isinstance(code, int) and code < 300) > 0
    assert requests.get(fuzzed.url + "/healthz", timeout=5).text == "ok"


def pod(name: str, **requests_: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"requests": requests_}}]}}


# what a new user found by hand (issue 15), and what the campaigns found since
FOUND = [
    ("json-200000-deep", "POST", "/api/v1/namespaces/default/configmaps", {}, b"[" * 200_000 + b"]" * 200_000,
     "application/json", 400, "nested more than 100 levels deep"),
    ("yaml-50000-deep", "POST", "/api/v1/namespaces/default/configmaps", {}, b"[" * 50_000 + b"]" * 50_000,
     "application/yaml", 400, "nested more than 100 levels deep"),
    ("negative-limit", "GET", "/api/v1/namespaces/default/pods", {"limit": "-5"}, None, None, 200, "PodList"),
    ("rv-not-a-number", "GET", "/api/v1/namespaces/default/pods", {"resourceVersion": "notanumber"}, None, None,
     400, 'invalid resource version: resourceVersion: Invalid value: "notanumber": strconv.ParseUint: parsing '
     '"notanumber": invalid syntax'),
    ("watch-rv-not-a-number", "GET", "/api/v1/namespaces/default/pods", {"watch": "1", "resourceVersion": "-1"},
     None, None, 400, 'parsing "-1": invalid syntax'),
    ("cpu-out-of-range", "POST", "/api/v1/namespaces/default/pods", {}, json.dumps(pod("big", cpu="1e999999999")),
     "application/json", 422, 'requests[cpu]: Invalid value: "1e999999999": quantity out of range'),
    ("negative-memory", "POST", "/api/v1/namespaces/default/pods", {}, json.dumps(pod("neg", memory="-5Gi")),
     "application/json", 422, 'requests[memory]: Invalid value: "-5Gi": must be greater than or equal to 0'),
    ("nan-in-json", "POST", "/api/v1/namespaces/default/configmaps", {}, b'{"metadata":{"name":"n"},"x":NaN}',
     "application/json", 400, "error decoding request body as JSON"),
    ("huge-timeout", "GET", "/api/v1/namespaces/default/pods", {"watch": "1", "timeoutSeconds": "9" * 30}, None,
     None, 400, "value out of range"),
    ("gzip-body-not-gzip", "POST", "/api/v1/namespaces/default/configmaps", {}, b"{not gzip", "application/json",
     400, "error decoding request body as JSON"),
    ("replicas-beyond-int32", "POST", "/apis/apps/v1/namespaces/default/deployments", {},
     json.dumps({"metadata": {"name": "d"}, "spec": {"replicas": 2**31}}), "application/json", 400,
     "cannot unmarshal number 2147483648 into Go struct field DeploymentSpec.spec.replicas of type int32"),
    ("number-beyond-float64", "POST", "/api/v1/namespaces/default/configmaps", {},
     b'{"metadata":{"name":"n"},"x":1' + b"0" * 400 + b"}", "application/json", 400, "float64"),
    ("time-not-rfc3339", "POST", "/apis/coordination.k8s.io/v1/namespaces/default/leases", {},
     json.dumps({"metadata": {"name": "l"}, "spec": {"renewTime": "yesterday"}}), "application/json", 400,
     'parsing time "yesterday"'),
    ("a-pod-to-patch", "POST", "/api/v1/namespaces/default/pods", {}, json.dumps(pod("smp")), "application/json",
     201, "Pod"),
    ("negative-claim", "POST", "/api/v1/namespaces/default/persistentvolumeclaims", {},
     json.dumps({"metadata": {"name": "c"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                     "resources": {"requests": {"storage": "-1Gi"}}}}),
     "application/json", 422, "must be greater than or equal to 0"),
    ("cluster-ip-not-an-ip", "POST", "/api/v1/namespaces/default/services", {},
     json.dumps({"metadata": {"name": "s"}, "spec": {"clusterIP": "999.1.1.1", "ports": [{"port": 80}]}}),
     "application/json", 422, "must be a valid IP address"),
    ("strategic-order-by-objects", "PATCH", "/api/v1/namespaces/default/pods/smp", {},
     json.dumps({"spec": {"$setElementOrder/containers": [{"name": {"a": 1}}],
                          "containers": [{"name": "c", "image": "busybox:1.37"}]}}),
     "application/strategic-merge-patch+json", 200, "busybox:1.37"),
    ("unknown-field-with-a-control-character", "POST", "/api/v1/namespaces/default/configmaps", {},
     json.dumps({"metadata": {"name": "ctl"}, "\u0016x": 1}), "application/json", 201, "ConfigMap"),
    ("protobuf-wrong-wire-type", "POST", "/api/v1/namespaces", {}, b"k8s\x00\n\x0f\n\x02v1\x12\tNamespace\x12\x01\x15",
     "application/vnd.kubernetes.protobuf", 400, "error decoding protobuf body"),
]


@pytest.mark.parametrize("case", FOUND, ids=[c[0] for c in FOUND])
def test_what_fuzzing_found_is_answered_as_kubernetes_would(fuzzed, case):
    _, method, path, params, body, ctype, code, text = case
    before = fuzzed.store.revision
    headers = {"Content-Type": ctype} if ctype else {}
    r = requests.request(method, fuzzed.url + path, params=params, data=body, headers=headers, timeout=30)
    assert r.status_code == code, r.text[:300]
    if code >= 400:
        assert r.json()["kind"] == "Status" and r.json()["code"] == code
        assert text in r.json()["message"]
        assert fuzzed.store.revision == before
    else:
        assert text in r.text
