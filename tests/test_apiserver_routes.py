"""Every URL shape kube-apiserver serves still routes where it did, and every other path gets its Status.

The table was recorded from the apiserver before its hand-written path parser became routes of
aiohttp's router: each row is a request and what a client saw (status, then the Status reason and
message, the object's kind, or the first watch event). Rows run in order on one fresh server.
"""

from __future__ import annotations

import http.client
import json

import pytest

from labkit.controlplane.apiserver import APIServer

NO_PATH = "NotFound: the server could not find the requested resource"
NO_METHOD = "MethodNotAllowed: the server does not allow this method on the requested resource"
CONFIGMAP = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"}, "data": {"a": "b"}})
NODE = json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
DEPLOYMENT = json.dumps({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d1"},
                         "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                                  "template": {"metadata": {"labels": {"a": "b"}},
                                               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})

# (method, path, body, status, what the reply says)
ROUTES = [
    ('GET', '/healthz', None, 200, 'ok'),
    ('GET', '/readyz', None, 200, 'ok'),
    ('GET', '/livez', None, 200, 'ok'),
    ('GET', '/healthz/', None, 200, 'ok'),
    ('POST', '/healthz', None, 200, 'ok'),
    ('GET', '/livez/ping', None, 200, 'ok'),
    ('GET', '/healthz/etcd', None, 200, 'ok'),
    ('GET', '/version', None, 200, "['buildDate', 'compiler']"),
    ('GET', '/version/', None, 200, "['buildDate', 'compiler']"),
    ('DELETE', '/version', None, 200, "['buildDate', 'compiler']"),
    ('GET', '/', None, 404, NO_PATH),
    ('GET', '/nope', None, 404, NO_PATH),
    ('GET', '/api', None, 200, 'APIVersions'),
    ('GET', '/api/', None, 200, 'APIVersions'),
    ('GET', '/apis', None, 200, 'APIGroupList'),
    ('POST', '/api', None, 200, 'APIVersions'),
    ('GET', '/api/v1', None, 200, '<large>'),
    ('GET', '/api/v2', None, 404, NO_PATH),
    ('GET', '/apis/apps', None, 200, 'APIGroup'),
    ('GET', '/apis/nope', None, 404, NO_PATH),
    ('GET', '/apis/apps/v1', None, 200, '<large>'),  # DaemonSets and StatefulSets make it long
    ('GET', '/apis/apps/v9', None, 404, NO_PATH),
    ('GET', '/apis/apps/v1/', None, 200, '<large>'),
    ('GET', '/apis/storage.k8s.io/v1', None, 200, 'APIResourceList'),
    ('GET', '/apis/coordination.k8s.io/v1', None, 200, 'APIResourceList'),
    ('POST', '/api/v1/namespaces/default/configmaps', CONFIGMAP, 201, 'ConfigMap'),
    ('POST', '/api/v1/namespaces/default/configmaps', CONFIGMAP, 409, 'AlreadyExists: configmaps "c1" already exists'),
    ('POST', '/api/v1/nodes', NODE, 201, 'Node'),
    ('POST', '/apis/apps/v1/namespaces/default/deployments', DEPLOYMENT, 201, 'Deployment'),
    ('GET', '/api/v1/namespaces', None, 200, 'NamespaceList'),
    ('GET', '/api/v1/namespaces/default', None, 200, 'Namespace'),
    ('GET', '/api/v1/namespaces/default/', None, 200, 'Namespace'),
    ('GET', '/api/v1/namespaces/default/status', None, 200, 'Namespace'),
    ('GET', '/api/v1/namespaces/default/finalize', None, 404, NO_PATH),
    ('GET', '/api/v1/namespaces//configmaps', None, 200, 'ConfigMapList'),
    ('GET', '/api/v1//nodes', None, 404, NO_PATH),
    ('GET', '/api/v1/namespaces/default/deployments', None, 404, NO_PATH),
    ('GET', '/apis/apps/v1/namespaces/default/status', None, 404, NO_PATH),
    ('GET', '/api/v1/namespaces/default/configmaps/a{b', None, 404, 'NotFound: configmaps "a{b" not found'),
    ('GET', '/api/v1/namespaces/default/pods/x/status/extra', None, 404, NO_PATH),
    ('GET', '/healthzx', None, 404, NO_PATH),
    ('GET', '/api//', None, 200, 'APIVersions'),
    ('GET', '/apis/apps//', None, 200, 'APIGroup'),
    ('GET', '/api/v1/namespaces/default/configmaps', None, 200, 'ConfigMapList'),
    ('GET', '/api/v1/namespaces/default/configmaps/c1', None, 200, 'ConfigMap'),
    ('GET', '/api/v1/namespaces/default/configmaps?limit=1', None, 200, 'ConfigMapList'),
    ('GET', '/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1', None, 200, 'event ADDED'),
    ('GET', '/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1&timeoutSeconds=1', None, 200, 'event ADDED'),
    ('GET', '/api/v1/watch/namespaces/default/configmaps', None, 404, NO_PATH),
    ('GET', '/api/v1/watch/configmaps', None, 404, NO_PATH),
    ('GET', '/api/v1/namespaces/default/configmaps/c1/status', None, 404, NO_PATH),
    ('GET', '/api/v1/namespaces/default/configmaps/c1/x/y', None, 404, NO_PATH),
    ('GET', '/api/v1/namespaces/default/pods/nope', None, 404, 'NotFound: pods "nope" not found'),
    ('GET', '/api/v1/namespaces/default/pods/nope/status', None, 404, 'NotFound: pods "nope" not found'),
    ('GET', '/api/v1/namespaces/default/pods/nope/bogus', None, 404, NO_PATH),
    ('GET', '/api/v1/namespaces/default/pods/nope/log', None, 404, 'NotFound: pods "nope" not found'),
    ('POST', '/api/v1/namespaces/default/pods/nope/binding', '{"target":{"name":"n1"}}', 404, 'NotFound: pods "nope" not found'),
    ('POST', '/api/v1/namespaces/default/pods/nope/eviction', '{}', 404, 'NotFound: pods "nope" not found'),
    ('GET', '/api/v1/namespaces/default/pods/nope/scale', None, 404, NO_PATH),
    ('DELETE', '/api/v1/namespaces/default/pods/nope/status', None, 405, NO_METHOD),
    ('POST', '/api/v1/namespaces/default/pods/nope/log', None, 405, NO_METHOD),
    ('GET', '/api/v1/namespaces/default/pods/nope/binding', None, 405, NO_METHOD),
    ('GET', '/apis/apps/v1/namespaces/default/deployments/d1/scale', None, 200, 'Scale'),
    ('GET', '/apis/apps/v1/namespaces/default/deployments/nope/scale', None, 404, 'NotFound: deployments.apps "nope" not found'),
    ('PUT', '/apis/apps/v1/namespaces/default/deployments/d1/scale', '{"metadata":{"name":"d1"},"spec":{"replicas":2}}', 200, 'Scale'),
    ('GET', '/apis/apps/v1/deployments', None, 200, 'DeploymentList'),
    ('GET', '/apis/apps/v1/deployments/d1', None, 404, NO_PATH),
    ('GET', '/api/v1/namespaces/default/pods/a/b/c', None, 404, NO_PATH),
    ('GET', '/api/v1/nodes', None, 200, 'NodeList'),
    ('GET', '/api/v1/nodes/n1', None, 200, 'Node'),
    ('GET', '/api/v1/nodes/n1/status', None, 200, 'Node'),
    ('GET', '/api/v1/nodes/n1/a/b', None, 404, NO_PATH),
    ('GET', '/api/v1/nodes/n1/proxy', None, 404, NO_PATH),
    ('GET', '/api/v1/pods', None, 200, 'PodList'),
    ('GET', '/api/v1/pods/x', None, 404, NO_PATH),
    ('GET', '/api/v1/foos', None, 404, NO_PATH),
    ('GET', '/api/v1/namespaces/default/foos', None, 404, NO_PATH),
    ('GET', '/api/v1/namespaces/default/nodes', None, 404, NO_PATH),
    ('GET', '/api/v1/namespaces/default/nodes/n1', None, 404, NO_PATH),
    ('GET', '/api/v1/namespaces/default/namespaces', None, 404, NO_PATH),
    ('GET', '//api//v1', None, 404, NO_PATH),
    ('GET', '/api//v1/nodes', None, 404, NO_PATH),
    ('GET', '/api/v1/namespaces/default/configmaps/a%2Fb', None, 404, NO_PATH),
    ('GET', '/api/v1/namespaces/default/configmaps/c%31', None, 200, 'ConfigMap'),
    ('GET', '/api/v1/nodes/n%31', None, 200, 'Node'),
    ('PUT', '/api/v1/namespaces', None, 405, NO_METHOD),
    ('PATCH', '/api/v1/namespaces/default/configmaps', None, 405, NO_METHOD),
    ('POST', '/api/v1/namespaces/default/configmaps/c1', None, 405, NO_METHOD),
    ('OPTIONS', '/api/v1/namespaces/default/configmaps/c1', None, 405, NO_METHOD),
    ('HEAD', '/api/v1/namespaces/default/configmaps/c1', None, 405, ''),
    ('PATCH', '/api/v1/namespaces/default/configmaps/c1', '{"data":{"x":"y"}}', 415, 'UnsupportedMediaType: the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got "application/json")'),
    ('GET', '/openapi/v2', None, 200, 'swagger'),
    ('GET', '/openapi/v2/', None, 200, 'swagger'),
    ('GET', '/openapi/v2/x', None, 404, NO_PATH),
    ('GET', '/openapi/v3', None, 200, 'OpenAPI v3 paths'),
    ('GET', '/openapi/v3/api/v1', None, 200, '<large>'),
    ('GET', '/openapi/v3/apis/apps/v1', None, 200, '<large>'),
    ('GET', '/openapi/v3/apis/nope/v1', None, 404, NO_PATH),
    ('GET', '/openapi/v3/api/v2', None, 404, NO_PATH),
    ('GET', '/openapi/v3/api', None, 404, NO_PATH),
    ('GET', '/openapi/v3/a/b/c/d', None, 404, NO_PATH),
    ('GET', '/openapi', None, 404, NO_PATH),
    ('POST', '/openapi/v2', None, 200, 'swagger'),
    ('DELETE', '/api/v1/namespaces/default/configmaps/c1', None, 200, 'Status'),
    ('DELETE', '/api/v1/namespaces/default/configmaps/c1', None, 404, 'NotFound: configmaps "c1" not found'),
    ('DELETE', '/api/v1/nodes', None, 200, 'Status'),
    ('GET', '/api/v1/nodes', None, 200, 'NodeList'),
]


def _summary(body: bytes) -> str:
    """What a client reads first in a reply: a Status's reason and message, a kind, an event type."""
    if not body:
        return ""
    if body.startswith(b'{"kind":"APIGroupList"'):  # grows with every group served (autoscaling, metrics.k8s.io)
        return "APIGroupList"
    if body.startswith(b'{"paths":'):  # /openapi/v3 grows with every group-version served
        return "OpenAPI v3 paths"
    if len(body) > 1500:
        return "<large>"
    text = body.decode()
    if text == "ok":
        return "ok"
    doc = json.loads(text.split("\n")[0])
    if doc.get("kind") == "Status" and doc.get("status") == "Failure":
        return f"{doc['reason']}: {doc['message']}"
    if "type" in doc and "object" in doc:
        return f"event {doc['type']}"
    if "swagger" in doc:
        return "swagger"
    return doc.get("kind") or str(sorted(doc)[:2])


@pytest.fixture(scope="module")
def server():
    with APIServer("memory") as api:
        yield api


def test_every_path_routes_as_before(server):
    wrong = []
    for method, path, body, status, summary in ROUTES:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=15)
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        reply = conn.getresponse()
        got = (reply.status, _summary(reply.read()))
        conn.close()
        if got != (status, summary):
            wrong.append(f"{method} {path}: expected {(status, summary)}, got {got}")
    assert not wrong, "\n".join(wrong)
