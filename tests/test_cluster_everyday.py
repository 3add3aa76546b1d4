"""The everyday kubectl commands of a Kubernetes lab, each version of kubectl against one cluster.

Issue 10 found 19 of 28 everyday commands working; this runs all of them (and four more: the
workloads, a class-less claim, a refused PriorityClass), in order, with kubectl 1.30 and 1.33,
as a learner following any tutorial would. One test per kubectl version: the commands build on
each other (a Deployment, then exec into its pod, then expose it ...), and a failure names every
command that failed with kubectl's own last lines.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from support.cluster import wait_for
from support.streams import free_port

from labkit.cluster import Cluster

VERSIONS = ["1.30", "1.33"]
KUBECTLS = {v: f"/usr/lib/google-cloud-sdk/bin/kubectl.{v}" for v in VERSIONS}

WEB = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: web, image: busybox, command: [httpd, -f, -p, "8080"]}]
"""
AGENT = """apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: a, image: busybox, command: [sleep, "3600"]}]
"""
DB = """apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {name: db, image: busybox, command: [sleep, "3600"], volumeMounts: [{name: data, mountPath: /data}]}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Mi}}}
"""
CLAIM = """apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: plain}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Mi}}}
"""


@pytest.fixture(scope="module")
def cluster():
    with Cluster(nodes=2, store="sqlite", processes=True) as c:
        yield c


class Session:
    """One learner's terminal: kubectl of one version, in a namespace of its own."""

    def __init__(self, cluster: Cluster, version: str, folder: Path):
        self.kubectl = KUBECTLS[version]
        self.kubeconfig = cluster.kubeconfig
        self.ns = "everyday-" + version.replace(".", "")
        self.folder = folder
        self.failed: list[str] = []

    def k(self, *args: str, stdin: bytes | None = None, timeout: float = 90) -> subprocess.CompletedProcess:
        return subprocess.run([self.kubectl, "--kubeconfig", self.kubeconfig, "-n", self.ns, *args],
                              input=stdin, capture_output=True, timeout=timeout)

    def check(self, name: str, ok: bool, out: subprocess.CompletedProcess | str = "") -> None:
        if not ok:
            text = out if isinstance(out, str) else (out.stdout + out.stderr).decode(errors="replace")
            self.failed.append(f"{name}: {' | '.join(text.strip().splitlines()[-2:])}")

    def run(self, name: str, *args: str, stdin: bytes | None = None, want: int = 0) -> subprocess.CompletedProcess:
        out = self.k(*args, stdin=stdin)
        self.check(name, out.returncode == want, out)
        return out

    def file(self, name: str, text: str) -> str:
        p = self.folder / name
        p.write_text(text)
        return str(p)


def _port_forward(s: Session, target: str) -> tuple[bool, str]:
    """`kubectl port-forward TARGET PORT:8080`, then an HTTP GET through it (busybox httpd answers 404).

    kubectl 1.30 speaks plain SPDY for port-forward unless told to tunnel it over WebSocket, as the
    README says; 1.31 and later do so by default (the variable changes nothing there)."""
    port = free_port()
    proc = subprocess.Popen([s.kubectl, "--kubeconfig", s.kubeconfig, "-n", s.ns, "port-forward", target,
                             f"{port}:8080"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=dict(os.environ, KUBECTL_PORT_FORWARD_WEBSOCKETS="true"))
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
                return True, "200"
            except urllib.error.HTTPError as exc:
                return exc.code == 404, f"HTTP {exc.code}"
            except OSError:
                time.sleep(0.2)
        return False, "no answer through the forwarded port in 30 s"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.parametrize("version", VERSIONS)
def test_everyday_kubectl_commands(cluster, version, tmp_path):
    if not os.path.exists(KUBECTLS[version]):
        pytest.skip(f"kubectl {version} is not installed at {KUBECTLS[version]}")
    s = Session(cluster, version, tmp_path)
    s.run("create namespace", "create", "namespace", s.ns)
    try:
        _commands(s, cluster)
    finally:
        s.k("delete", "namespace", s.ns, "--wait=false")
    assert not s.failed, f"kubectl {version}: {len(s.failed)} commands failed:\n" + "\n".join(s.failed)


def _commands(s: Session, cluster: Cluster) -> None:
    s.run("apply", "apply", "-f", s.file("web.yaml", WEB))
    s.run("wait", "wait", "--for=condition=available", "deploy/web", "--timeout=90s")
    pod = s.k("get", "pods", "-l", "app=web", "-o", "jsonpath={.items[0].metadata.name}").stdout.decode()
    out = s.run("exec", "exec", pod, "--", "sh", "-c", "echo hi; exit 3", want=3)
    s.check("exec output", out.stdout == b"hi\n", out)
    out = s.run("exec -i", "exec", "-i", pod, "--", "cat", stdin=b"piped\n")
    s.check("exec -i output", out.stdout == b"piped\n", out)
    blob = os.urandom(1 << 20)
    (s.folder / "blob").write_bytes(blob)
    s.run("cp to the pod", "cp", str(s.folder / "blob"), f"{pod}:/tmp/blob")
    s.run("cp from the pod", "cp", f"{pod}:/tmp/blob", str(s.folder / "back"))
    s.check("cp byte for byte", (s.folder / "back").exists() and (s.folder / "back").read_bytes() == blob,
            "the copy that came back differs")
    s.run("expose", "expose", "deploy/web", "--port", "8080")
    for target in (f"pod/{pod}", "svc/web"):
        ok, why = _port_forward(s, target)
        s.check(f"port-forward {target}", ok, why)
    # attach streams the container's output until it exits: still attached 2 s later is the check
    proc = subprocess.Popen([s.kubectl, "--kubeconfig", s.kubeconfig, "-n", s.ns, "attach", pod],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(2)
    s.check("attach stays attached", proc.poll() is None, (proc.stderr.read() if proc.poll() is not None
                                                            else b"").decode(errors="replace"))
    proc.terminate()
    proc.wait(10)
    out = s.run("get all", "get", "all")
    s.check("get all lists the Deployment", b"deployment.apps/web" in out.stdout, out)
    out = s.run("explain", "explain", "pod.spec.containers")
    s.check("explain names image", b"image" in out.stdout.lower(), out)
    s.run("label", "label", "pod", pod, "tier=front")
    s.run("annotate", "annotate", "pod", pod, "note=x")
    s.run("create secret", "create", "secret", "generic", "s1", "--from-literal=a=b")
    node = sorted(cluster.node_names())[-1]
    s.run("cordon", "cordon", node)
    s.run("drain", "drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=90s")
    s.run("uncordon", "uncordon", node)
    s.run("taint", "taint", "node", node, "dedicated=x:NoSchedule")
    s.run("untaint", "taint", "node", node, "dedicated-")
    s.run("server-side apply", "apply", "--server-side", "-f", s.file("web.yaml", WEB))
    out = s.k("diff", "-f", s.file("web.yaml", WEB))
    s.check("diff", out.returncode in (0, 1), out)  # 1: there are differences (defaults), still a success
    s.run("--dry-run=server", "create", "deployment", "dry", "--image=busybox", "--dry-run=server")
    s.run("events sorted", "get", "events", "--sort-by=.lastTimestamp")
    out = s.run("api-versions", "api-versions")
    s.check("api-versions lists batch/v1", b"batch/v1" in out.stdout, out)
    s.run("cluster-info", "cluster-info")
    s.run("rollout history", "rollout", "history", "deploy/web")
    out = s.run("describe node", "describe", "node", node)
    s.check("describe node shows Allocatable", b"Allocatable" in out.stdout, out)
    s.run("create job", "create", "job", "j1", "--image=busybox", "--", "sh", "-c", "echo done")
    s.run("job completes", "wait", "--for=condition=complete", "job/j1", "--timeout=90s")
    s.run("create cronjob", "create", "cronjob", "c1", "--image=busybox", "--schedule=*/1 * * * *", "--", "date")
    s.run("get cronjob", "get", "cronjob", "c1")
    s.run("apply DaemonSet", "apply", "-f", s.file("agent.yaml", AGENT))
    s.run("DaemonSet rolls out", "rollout", "status", "ds/agent", "--timeout=90s")
    s.run("apply StatefulSet", "apply", "-f", s.file("db.yaml", DB))
    s.run("StatefulSet rolls out", "rollout", "status", "sts/db", "--timeout=120s")
    s.run("its claim", "get", "pvc", "data-db-0")
    s.run("a claim with no class", "apply", "-f", s.file("claim.yaml", CLAIM))
    bound = wait_for(lambda: s.k("get", "pvc", "plain", "-o", "jsonpath={.status.phase}").stdout == b"Bound",
                     timeout=60, what="the class-less claim to bind")
    s.check("the class-less claim binds", bool(bound))
    out = s.k("run", "pc", "--image=busybox", '--overrides={"spec":{"priorityClassName":"nope"}}')
    s.check("a missing PriorityClass is refused", out.returncode != 0 and
            b"no PriorityClass with name nope was found" in out.stderr, out)
