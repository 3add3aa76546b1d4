"""The routing gateway: two apps reached by host name through one ingress controller on loopback.

One cluster and one controller for the module. The apps are busybox ``httpd`` pods that answer
with their app's name and their pod's hostname, so a test can tell which pod served a request.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest
from support.cluster import KUBECTL, clear_namespace, kubectl, wait_for

from labkit.cluster import Cluster
from labkit.ingress import IngressController, ingress_class

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

SLOW_CGI = "#!/bin/sh\\nsleep 3\\necho Content-Type: text/plain\\necho\\necho slow $(hostname)\\n"


def app(name: str, replicas: int = 1) -> dict:
    """An httpd that says ``<name> <hostname>`` on / and, after 3 s, ``slow <hostname>`` on /cgi-bin/slow."""
    script = (f"mkdir -p /www/cgi-bin && echo {name} $(hostname) > /www/index.html && "
              f"printf '{SLOW_CGI}' > /www/cgi-bin/slow && chmod +x /www/cgi-bin/slow && "
              "exec httpd -f -p 8080 -h /www")
    labels = {"app": name, "serving": "yes"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"terminationGracePeriodSeconds": 1,
                                           "containers": [{"name": "httpd", "image": "busybox",
                                                           "command": ["sh", "-c", script]}]}}}}


def service(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name, "serving": "yes"}, "ports": [{"port": 80, "targetPort": 8080}]}}


def rule(host: str, svc: str, path: str = "/", kind: str = "Prefix") -> dict:
    return {"host": host, "http": {"paths": [{"path": path, "pathType": kind, "backend": {
        "service": {"name": svc, "port": {"number": 80}}}}]}}


def get(gw: IngressController, host: str, path: str = "/") -> tuple[int, str]:
    req = urllib.request.Request(gw.url + path, headers={"Host": host})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def networking(cluster):
    from kubernetes import client

    return client.NetworkingV1Api(cluster.client())


@pytest.fixture(scope="module")
def cluster():
    with Cluster(nodes=2, store="sqlite", processes=True) as c:
        yield c


@pytest.fixture(scope="module")
def gateway(cluster, tmp_path_factory):
    net = networking(cluster)
    net.create_ingress_class(ingress_class("labkit"))
    apps, core = cluster.apps(), cluster.core()
    for name in ("blue", "green", "idle"):
        core.create_namespaced_service("default", service(name))
    for name in ("blue", "green"):
        apps.create_namespaced_deployment("default", app(name))
    manifest = tmp_path_factory.mktemp("ingress") / "apps.json"  # kubectl 1.32+ sends it as protobuf
    manifest.write_text(json.dumps({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "apps"},
        "spec": {"ingressClassName": "labkit", "rules": [rule("blue.example", "blue"), rule("green.example", "green"),
                                                          rule("idle.example", "idle")]}}))
    kubectl(cluster, "create", "-f", str(manifest))
    with IngressController(cluster.kubeconfig, ingress_class="labkit") as gw:
        try:
            yield gw
        finally:
            clear_namespace(cluster)


def test_two_apps_by_host_name_404_and_503(cluster, gateway):
    for name in ("blue", "green"):
        status, body = wait_for(lambda n=name: (r := get(gateway, f"{n}.example")) and r[0] == 200 and r,
                                60, f"{name}.example answered through the gateway")
        assert body.startswith(f"{name} {name}-")
    status, body = get(gateway, "nobody.example")
    assert status == 404 and "no Ingress rule" in body
    status, body = get(gateway, "idle.example", "/anything")
    assert status == 503 and "no ready endpoints" in body

    net = networking(cluster)
    ing = wait_for(lambda: (i := net.read_namespaced_ingress("apps", "default")).status.load_balancer.ingress and i,
                   20, "the controller wrote the Ingress's address")
    assert ing.status.load_balancer.ingress[0].ip == "127.0.0.1"
    table = kubectl(cluster, "get", "ingress")
    header, row = table.splitlines()[:2]
    assert header.split() == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    assert row.split()[:5] == ["apps", "labkit", "blue.example,green.example,idle.example", "127.0.0.1", "80"]
    described = kubectl(cluster, "describe", "ingress", "apps")
    assert "Ingress Class:" in described and "labkit" in described
    blue_ip = cluster.core().list_namespaced_pod("default", label_selector="app=blue").items[0].status.pod_ip
    assert "blue.example" in described and f"blue:80 ({blue_ip}:8080)" in described
    assert kubectl(cluster, "get", "ingressclass").split()[4:6] == ["labkit", "labkit.dev/ingress-controller"]


def test_bad_ingress_refused_with_reason(cluster):
    from kubernetes.client.exceptions import ApiException

    bad = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "bad"},
           "spec": {"rules": [{"host": "10.0.0.1", "http": {"paths": [{"path": "x", "pathType": "Regex",
                                                                        "backend": {"service": {"name": "blue"}}}]}}]}}
    with pytest.raises(ApiException) as err:
        networking(cluster).create_namespaced_ingress("default", bad)
    assert err.value.status == 422
    message = json.loads(err.value.body)["message"]
    for words in ("must be a DNS name, not an IP address", 'Unsupported value: "Regex"', "must be an absolute path",
                  "port name or number is required"):
        assert words in message


def test_scaling_app_while_the_other_keeps_answering(cluster, gateway):
    apps = cluster.apps()
    stop, blue_answers = threading.Event(), []

    def keep_asking_blue() -> None:
        while not stop.is_set():
            blue_answers.append(get(gateway, "blue.example")[0])

    asker = threading.Thread(target=keep_asking_blue)
    asker.start()
    try:
        apps.patch_namespaced_deployment_scale("green", "default", {"spec": {"replicas": 3}})
        wait_for(lambda: len(gateway.call(lambda: gateway.pool.ready(next(
            b for b in gateway.pool._ready if b.service == "green")))) == 3, 60, "three green endpoints in the gateway")
        seen = set()
        wait_for(lambda: seen.update(b.split()[1] for s, b in [get(gateway, "green.example")] if s == 200)
                 or len(seen) == 3, 30, "requests spread over the three green pods")
    finally:
        stop.set()
        asker.join()
    assert blue_answers and set(blue_answers) == {200}


def test_removed_endpoint_is_drained(cluster, gateway):
    core = cluster.core()
    result: list = []
    slow = threading.Thread(target=lambda: result.append(get(gateway, "green.example", "/cgi-bin/slow")))
    slow.start()
    busy = wait_for(lambda: gateway.call(lambda: list(gateway.pool.inflight)), 10, "the slow request in flight")[0]
    pod = next(p for p in core.list_namespaced_pod("default", label_selector="app=green").items
               if p.status.pod_ip == busy.ip)
    # take the pod out of the Service without stopping it: the request in flight must still finish
    core.patch_namespaced_pod(pod.metadata.name, "default", {"metadata": {"labels": {"serving": "no"}}})
    wait_for(lambda: gateway.call(lambda: gateway.pool.draining()) == [busy], 20, "the endpoint listed as draining")
    for _ in range(6):
        status, body = get(gateway, "green.example")
        assert status == 200 and pod.metadata.name not in body
    slow.join(10)
    assert result == [(200, f"slow {pod.metadata.name}\n")]
    assert gateway.call(lambda: gateway.pool.draining()) == []


def http_from_fabric(cluster, ip: str, port: int) -> str:
    """GET / from the cluster's router namespace (the host has no route to the nodes' addresses)."""
    from labkit.ingress.upstreams import NodeSockets
    from labkit.node.scope import cluster_scope, fabric_name

    sockets = NodeSockets(lambda _: f"/run/netns/{fabric_name(cluster_scope(cluster.kubeconfig))}")
    try:
        with sockets.socket("fabric") as s:
            s.settimeout(5)
            s.connect((ip, port))
            s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
            return data.decode()
    finally:
        sockets.close()


def test_nodeport_reaches_the_app_on_every_node(cluster, gateway):
    import subprocess

    from labkit.node.cni.topology import NODE_NS_PREFIX
    from labkit.node.scope import cluster_scope, node_id

    core = cluster.core()
    svc = service("blue")
    svc["metadata"]["name"] = "blue-np"
    svc["spec"]["type"] = "NodePort"
    node_port = core.create_namespaced_service("default", svc).spec.ports[0].node_port
    assert 30000 <= node_port <= 32767
    assert f"80:{node_port}/TCP" in kubectl(cluster, "get", "svc", "blue-np")
    for node in cluster.node_names():
        ns = NODE_NS_PREFIX + node_id(node, cluster_scope(cluster.kubeconfig))
        out = subprocess.run(["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "eth0"], capture_output=True,
                             text=True, check=True).stdout.split()
        node_ip = out[out.index("inet") + 1].split("/")[0]
        reply = wait_for(lambda ip=node_ip: (r := http_from_fabric(cluster, ip, node_port)) and " 200 " in r and r,
                         20, f"blue through node {node}'s port {node_port}")
        assert "blue blue-" in reply
    core.delete_namespaced_service("blue-np", "default")


def test_nodeport_outside_the_range_is_refused(cluster):
    svc = service("blue")
    svc["metadata"]["name"] = "blue-low"
    svc["spec"].update(type="NodePort", ports=[{"port": 80, "targetPort": 8080, "nodePort": 8080}])
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as err:
        cluster.core().create_namespaced_service("default", svc)
    out = json.loads(err.value.body)["message"]
    assert "provided port is not in the valid range. The range of valid ports is 30000-32767" in out


def test_route_table_follows_the_ingress_spec_matching_rules():
    from labkit.ingress import Backend, RouteTable

    def path(p: str, kind: str, svc: str) -> dict:
        return {"path": p, "pathType": kind, "backend": {"service": {"name": svc, "port": {"number": 80}}}}

    ing = {"metadata": {"name": "i", "namespace": "ns", "creationTimestamp": "2026-01-01T00:00:00Z"},
           "spec": {"defaultBackend": {"service": {"name": "fallback", "port": {"name": "http"}}}, "rules": [
               {"host": "shop.example", "http": {"paths": [path("/", "Prefix", "root"), path("/foo", "Prefix", "foo"),
                                                           path("/foo/bar", "Prefix", "foobar"),
                                                           path("/foo", "Exact", "exact")]}},
               {"host": "*.example", "http": {"paths": [path("/", "Prefix", "wild")]}},
               {"http": {"paths": [path("/any", "ImplementationSpecific", "anyhost")]}}]}}
    table = RouteTable([ing])

    def svc(host: str, p: str) -> str | None:
        b = table.match(host, p)
        return b and b.service

    assert svc("shop.example", "/foo") == "exact"          # Exact beats Prefix at equal length
    assert svc("shop.example:8080", "/foo/") == "foo"      # the port in Host is ignored
    assert svc("shop.example", "/foo/bar/baz") == "foobar"  # the longest prefix wins
    assert svc("shop.example", "/foobar") == "root"         # prefixes match whole path elements
    assert svc("a.example", "/x") == "wild" and svc("a.b.example", "/x") == "fallback"  # one label only
    assert svc("other.test", "/any/thing") == "anyhost"
    assert table.match("other.test", "/") == Backend("ns", "fallback", "http")
    assert RouteTable([]).match("shop.example", "/") is None  # no rule, no default: the gateway says 404
