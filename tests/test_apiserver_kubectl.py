"""Real kubectl (1.27, 1.30, 1.33 where installed) against labkit's apiserver."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest
from support.apiserver import kubeconfig, kubectls
from support.cluster import wait_for

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports:
        - containerPort: 80
"""


@pytest.fixture()
def kubectl(request, api, tmp_path):
    binary = request.param
    cfg = kubeconfig(tmp_path / "kubeconfig", api.url)
    ns = "k" + Path(binary).suffix.replace(".", "") + str(time.time_ns())[-6:]

    def run(*args: str, check: bool = True, timeout: float = 30, stdin: str | None = None,
            namespaced: bool = True) -> subprocess.CompletedProcess:
        cmd = [binary, "--kubeconfig", str(cfg), *(("-n", ns) if namespaced else ()), *args]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=stdin)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed: {p.stderr}")
        return p
    run("create", "namespace", ns, namespaced=False)
    run.ns = ns  # type: ignore[attr-defined]
    run.cmd = [binary, "--kubeconfig", str(cfg), "-n", ns]  # type: ignore[attr-defined]
    run.tmp = tmp_path  # type: ignore[attr-defined]
    yield run
    run("delete", "namespace", ns, namespaced=False, check=False)


@pytest.mark.parametrize("kubectl", kubectls(), indirect=True)
def test_apply_twice_scale_label_delete(kubectl):
    f = kubectl.tmp / "web.yaml"
    f.write_text(DEPLOYMENT.format(replicas=2))
    assert "deployment.apps/web created" in kubectl("apply", "-f", str(f)).stdout
    f.write_text(DEPLOYMENT.format(replicas=3))
    assert "deployment.apps/web configured" in kubectl("apply", "-f", str(f)).stdout
    out = kubectl("get", "deploy", "web", "-o", "jsonpath={.spec.replicas} {.metadata.generation}").stdout
    assert out == "3 2"
    assert "scaled" in kubectl("scale", "deploy/web", "--replicas=5").stdout
    assert kubectl("get", "deploy", "web", "-o", "jsonpath={.spec.replicas}").stdout == "5"
    kubectl("label", "deploy", "web", "tier=frontend")
    assert "tier=frontend" in kubectl("get", "deploy", "--show-labels").stdout
    wide = kubectl("get", "deploy", "-o", "wide").stdout
    assert wide.split("\n")[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS",
                                           "IMAGES", "SELECTOR"]
    assert "nginx:1.25" in wide and "app=web" in wide
    assert 'deployment.apps "web" deleted' in kubectl("delete", "deploy", "web").stdout
    assert "No resources found" in kubectl("get", "deploy").stderr


@pytest.mark.parametrize("kubectl", kubectls(), indirect=True)
def test_create_get_describe_and_yaml(kubectl):
    out = kubectl("create", "deployment", "made", "--image=busybox:1.36", "--replicas=2")
    assert "deployment.apps/made created" in out.stdout
    kubectl("run", "solo", "--image=busybox:1.36", "--labels=app=solo")
    get = kubectl("get", "pods", "-o", "wide").stdout.splitlines()
    assert get[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE",
                              "READINESS", "GATES"]
    assert get[1].split()[:3] == ["solo", "0/1", "Pending"]
    all_ns = kubectl("get", "pods", "-A", namespaced=False).stdout
    assert all_ns.split("\n")[0].split()[:2] == ["NAMESPACE", "NAME"] and kubectl.ns in all_ns
    y = kubectl("get", "pod", "solo", "-o", "yaml").stdout
    assert "restartPolicy: Always" in y and "resourceVersion:" in y
    d = kubectl("describe", "pod", "solo").stdout
    assert "Name:" in d and "solo" in d and "busybox:1.36" in d
    assert kubectl("get", "po", "solo", "-o", "name").stdout.strip() == "pod/solo"
    kubectl("create", "configmap", "cm", "--from-literal=a=b")
    kubectl("create", "secret", "generic", "sec", "--from-literal=x=y")
    assert kubectl("get", "secret", "sec", "-o", "jsonpath={.data.x}").stdout == "eQ=="
    assert kubectl("get", "deploy", "made", "-o", "jsonpath={.spec.template.spec.containers[0].image}"
                   ).stdout == "busybox:1.36"


@pytest.mark.parametrize("kubectl", kubectls(), indirect=True)
def test_get_watch_streams_changes(kubectl):
    kubectl("run", "first", "--image=busybox:1.36")
    proc = subprocess.Popen([*kubectl.cmd, "get", "pods", "-w", "-v=6"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out: list[str] = []
    log: list[str] = []  # -v=6 logs each request once answered: the watch is open when its GET is logged
    threading.Thread(target=lambda: out.extend(iter(proc.stdout.readline, "")), daemon=True).start()
    threading.Thread(target=lambda: log.extend(iter(proc.stderr.readline, "")), daemon=True).start()

    def names() -> list[str]:
        return [line.split()[0] for line in list(out) if line.strip()]

    try:
        wait_for(lambda: any("watch=true" in ln for ln in list(log)), timeout=30,
                 what="kubectl get -w to open its watch (its -v=6 log names a watch=true GET)")
        kubectl("run", "second", "--image=busybox:1.36")
        kubectl("label", "pod", "first", "seen=yes")
        wait_for(lambda: "second" in names() and names().count("first") >= 2, timeout=30,
                 what="kubectl get -w to print second, then first again")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    lines = names()
    assert lines[0] == "NAME" and "first" in lines[1:] and "second" in lines[2:]
    assert lines.count("first") >= 2  # listed, then modified


@pytest.mark.parametrize("kubectl", kubectls(), indirect=True)
def test_errors_print_like_kubernetes(kubectl):
    p = kubectl("get", "pod", "nope", check=False)
    assert p.returncode == 1 and 'Error from server (NotFound): pods "nope" not found' in p.stderr
    kubectl("create", "configmap", "twice")
    p = kubectl("create", "configmap", "twice", check=False)
    assert p.returncode == 1 and 'configmaps "twice" already exists' in p.stderr
    bad = kubectl.tmp / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\nspec:\n  containers: [{name: c, "
                   "image: x}]\n")
    p = kubectl("apply", "-f", str(bad), check=False)
    assert p.returncode == 1 and "is invalid" in p.stderr
    unknown = kubectl.tmp / "unknown.yaml"
    unknown.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: ok}\nspec:\n  containers: [{name: c, "
                       "image: x}]\n  bogusField: 1\n")
    p = kubectl("apply", "-f", str(unknown), check=False)
    assert p.returncode == 1 and "bogusField" in p.stderr
    p = kubectl("get", "widgets", check=False)
    assert p.returncode == 1 and "widgets" in p.stderr


@pytest.mark.parametrize("kubectl", kubectls(), indirect=True)
def test_logs_delete_and_get_all(kubectl, api):
    import http.server
    import socketserver
    import threading

    import requests

    class Kubelet(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"hello from the kubelet\n")

        def log_message(self, *a):
            pass
    with socketserver.TCPServer(("127.0.0.1", 0), Kubelet) as srv:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        node = f"node-{kubectl.ns}"
        requests.post(f"{api.url}/api/v1/nodes", timeout=5, json={"metadata": {"name": node}, "status": {
            "daemonEndpoints": {"kubeletEndpoint": {"Port": srv.server_address[1]}}}})
        kubectl("run", "talker", "--image=busybox:1.36")
        requests.post(f"{api.url}/api/v1/namespaces/{kubectl.ns}/pods/talker/binding", timeout=5,
                      json={"metadata": {"name": "talker"}, "target": {"name": node}})
        assert kubectl("logs", "talker").stdout == "hello from the kubelet\n"
        srv.shutdown()
    requests.delete(f"{api.url}/api/v1/nodes/{node}", timeout=5)
    kubectl("create", "deployment", "d", "--image=busybox:1.36")
    kubectl("expose", "deployment", "d", "--port=80")
    out = kubectl("get", "all").stdout
    assert "pod/talker" in out and "service/d" in out and "deployment.apps/d" in out
    kubectl("run", "gone", "--image=busybox:1.36")
    assert 'pod "gone" deleted' in kubectl("delete", "pod", "gone").stdout  # never scheduled: removed at once
    p = kubectl("get", "pod", "gone", check=False)
    assert p.returncode == 1 and "NotFound" in p.stderr


@pytest.mark.parametrize("kubectl", kubectls(), indirect=True)
def test_reapply_removes_list_items_and_switches_volume_source(kubectl):
    f = kubectl.tmp / "three.yaml"
    spec = """apiVersion: apps/v1
kind: Deployment
metadata: {{name: three}}
spec:
  selector: {{matchLabels: {{app: three}}}}
  template:
    metadata: {{labels: {{app: three}}}}
    spec:
      volumes: [{{name: data, {volume}}}]
      containers:
      - {{name: a, image: "a:{tag}", env: [{env}], ports: [{ports}]}}
{extra}"""
    f.write_text(spec.format(volume="emptyDir: {}", tag=1, env='{name: XX, value: "1"}, {name: YY, value: "2"}',
                             ports="{containerPort: 80}, {containerPort: 81}", extra='      - {name: b, image: "b:1"}\n'))
    kubectl("apply", "-f", str(f))
    kubectl("annotate", "deploy", "three", "kept=yes")
    f.write_text(spec.format(volume="hostPath: {path: /tmp}", tag=2, env='{name: XX, value: "1"}',
                             ports="{containerPort: 80}", extra=""))
    kubectl("apply", "-f", str(f))
    got = json.loads(kubectl("get", "deploy", "three", "-o", "json").stdout)
    pod_spec = got["spec"]["template"]["spec"]
    assert [c["name"] for c in pod_spec["containers"]] == ["a"]
    a = pod_spec["containers"][0]
    assert a["image"] == "a:2" and a["env"] == [{"name": "XX", "value": "1"}]
    assert [p["containerPort"] for p in a["ports"]] == [80]
    assert pod_spec["volumes"] == [{"name": "data", "hostPath": {"path": "/tmp"}}]
    assert got["metadata"]["annotations"]["kept"] == "yes"


@pytest.mark.parametrize("kubectl", kubectls(("1.30", "1.33")), indirect=True)
def test_explain_reads_the_openapi_schemas(kubectl):
    out = kubectl("explain", "deployment.spec.strategy", namespaced=False).stdout
    assert "rollingUpdate" in out and "type" in out


@pytest.mark.parametrize("kubectl", kubectls(), indirect=True)
def test_server_side_apply_creates_then_updates(kubectl):
    f = kubectl.tmp / "ssa.yaml"
    f.write_text(DEPLOYMENT.format(replicas=1))
    assert "serverside-applied" in kubectl("apply", "--server-side", "-f", str(f)).stdout
    f.write_text(DEPLOYMENT.format(replicas=3).replace("nginx:1.25", "nginx:1.26"))
    kubectl("apply", "--server-side", "-f", str(f))
    out = kubectl("get", "deploy", "web", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image}")
    assert out.stdout == "3 nginx:1.26"
