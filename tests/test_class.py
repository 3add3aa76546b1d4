"""The classroom, as a teacher and three students meet it: ``labkit class up --students 3`` hands out
three kubeconfigs; with them the real kubectl keeps each student in their own namespace, a student
does a lab exercise and the live progress page (in headless Chromium) fills in that cell without a
reload; Pod Security and the quota refuse what would escape or overrun; ``labkit class check`` writes a
gradebook that matches; a node in its own network namespace joins over a veth with a bootstrap token
and runs a pod; ``labkit class down`` leaves nothing behind.

One class serves the whole module (it is the expensive part): the tests run in file order.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml
from support.chromium import CHROMIUM, Chromium
from support.cluster import KUBECTL, wait_for

LABKIT = [sys.executable, "-m", "labkit.cli"]
STATE = Path(os.environ.get("LABKIT_STATE", "/run/labkit"))
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or KUBECTL is None,
                                reason="a class needs root (its nodes' network) and kubectl")


def run(*args: str, check: bool = True, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    out = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=env)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out


class Veth:
    """A network namespace behind a veth pair with two addresses of our own: the 'other machine'."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.netns = f"labkit-classjoin-{tag}"
        self.host_if, self.ns_if = f"lkcj{tag}", f"lkcn{tag}"
        octet = 16 + int(tag[:2], 16) % 200
        self.host_ip, self.ns_ip = f"10.251.{octet}.1", f"10.251.{octet}.2"

    def up(self) -> Veth:
        for cmd in (["ip", "netns", "add", self.netns],
                    ["ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if],
                    ["ip", "link", "set", self.ns_if, "netns", self.netns],
                    ["ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if],
                    ["ip", "link", "set", self.host_if, "up"],
                    ["ip", "-n", self.netns, "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if],
                    ["ip", "-n", self.netns, "link", "set", self.ns_if, "up"],
                    ["ip", "-n", self.netns, "link", "set", "lo", "up"]):
            run(*cmd)
        return self

    def down(self) -> None:
        run("ip", "link", "del", self.host_if, check=False)
        run("ip", "netns", "del", self.netns, check=False)


@pytest.fixture(scope="module")
def veth():
    v = Veth().up()
    yield v
    v.down()


@pytest.fixture(scope="module")
def room(tmp_path_factory, veth):
    """``labkit class up --students 3``, listening on the veth's host side (and nothing else)."""
    folder = tmp_path_factory.mktemp("class")
    name = "t" + uuid.uuid4().hex[:6]
    out = run(*LABKIT, "class", "up", "--students", "3", "--name", name, "--dir", str(folder), "--nodes", "1",
              "--address", veth.host_ip, "--check-interval", "0", "--exercises", "14.1", timeout=180)
    info = json.loads((STATE / "classes" / name / "class.json").read_text())
    yield {"name": name, "dir": folder, "out": out.stdout, "info": info}
    if (STATE / "classes" / name).exists():  # the last test kills the class and lets gc clean up
        down = run(*LABKIT, "class", "down", "--name", name, check=False, timeout=180)
        assert down.returncode == 0, down.stderr


def kubectl_as(room: dict, student: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(KUBECTL, "--kubeconfig", str(room["dir"] / "kubeconfigs" / f"{student}.kubeconfig"), *args,
               check=check, timeout=60)


def teacher(room: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(KUBECTL, "--kubeconfig", str(room["dir"] / "teacher.kubeconfig"), *args, check=check, timeout=60)


def test_class_up_hands_out_three_kubeconfigs_with_their_own_tokens(room) -> None:
    files = sorted((room["dir"] / "kubeconfigs").glob("*.kubeconfig"))
    assert [f.stem for f in files] == ["student-1", "student-2", "student-3"]
    tokens, namespaces = set(), set()
    for f in files:
        doc = yaml.safe_load(f.read_text())
        assert doc["clusters"][0]["cluster"]["server"].startswith(f"https://{room['info']['api'].split('//')[1]}")
        assert doc["clusters"][0]["cluster"]["certificate-authority-data"]
        tokens.add(doc["users"][0]["user"]["token"])
        namespaces.add(doc["contexts"][0]["context"]["namespace"])
        assert oct(f.stat().st_mode & 0o777) == "0o600"
    assert len(tokens) == 3 and namespaces == {"class-student-1", "class-student-2", "class-student-3"}
    page = (room["dir"] / "handout.html").read_text()
    assert page.count('class="student"') == 3 and "@media print" in page and "break-after: page" in page
    assert "http" not in page.split("<body>")[0]  # no stylesheet or script from elsewhere
    assert "labkit node join" in room["out"]


def test_a_student_cannot_see_another_students_namespace(room) -> None:
    for kind in ("pods", "secrets", "configmaps"):
        out = kubectl_as(room, "student-1", "get", kind, "-n", "class-student-2", check=False)
        assert out.returncode != 0
        assert (f'Error from server (Forbidden): {kind} is forbidden: User "student-1" cannot list resource '
                f'"{kind}" in API group "" in the namespace "class-student-2"') in out.stderr
    nodes = kubectl_as(room, "student-1", "get", "nodes", "-o", "name")
    assert "node/node-1" in nodes.stdout
    out = kubectl_as(room, "student-1", "label", "node", "node-1", "mine=yes", check=False)
    assert out.returncode != 0 and "forbidden" in out.stderr
    assert kubectl_as(room, "student-1", "auth", "can-i", "create", "deployments").stdout.strip() == "yes"
    assert kubectl_as(room, "student-1", "auth", "can-i", "create", "deployments", "-n", "class-student-2",
                      check=False).stdout.strip() == "no"


def test_an_exercise_done_shows_up_on_the_progress_page_without_a_reload(room) -> None:
    if CHROMIUM is None:
        pytest.skip("no chromium on this host (apt-get install chromium)")
    url = room["info"]["progress"]
    cell = "document.getElementById('cell-student-1-14.1')"

    async def scenario() -> None:
        b = Chromium(loopback=True)
        try:
            await b.start()
            await b.open(url)
            assert await b.evaluate(f"{cell}.textContent") == "not yet"
            loaded = await b.evaluate("window.loadedAt")
            # the exercise (lab 14.1's end state: a pod 'web' that runs), done with kubectl as the student
            kubectl_as(room, "student-1", "run", "web", "--image", "busybox", "--restart", "Never", "--",
                       "sleep", "3600")
            for _ in range(300):
                urllib.request.urlopen(urllib.request.Request(url + "check", method="POST"), timeout=5).close()
                if await b.evaluate(f"{cell}.textContent") == "passed":
                    break
                await asyncio.sleep(0.2)
            assert await b.evaluate(f"{cell}.className") == "passed"
            assert await b.evaluate("window.loadedAt") == loaded  # the same page: no reload
            assert await b.evaluate("document.getElementById('cell-student-2-14.1').textContent") == "not yet"
            assert not [p for p in b.problems() if "network request" not in p]
        finally:
            await b.close()

    asyncio.run(scenario())


def test_pod_security_and_the_quota_refuse_what_would_escape_or_overrun(room) -> None:
    def pod(name: str, volumes: list | None = None, **container: object) -> dict:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"volumes": volumes or [], "containers": [
                    {"name": "app", "image": "busybox", "command": ["sleep", "9"], **container}]}}

    big = {"requests": {"memory": "700Mi"}, "limits": {"memory": "700Mi"}}
    pods = [pod("root", volumes=[{"name": "h", "hostPath": {"path": "/"}}]),
            pod("priv", securityContext={"privileged": True}),
            pod("big-1", resources=big), pod("big-2", resources=big)]
    f = room["dir"] / "pods.json"
    f.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": pods}))
    out = kubectl_as(room, "student-3", "create", "-f", str(f), check=False)  # one kubectl, four creates in order
    assert 'violates PodSecurity "baseline:latest": hostPath volumes (volume "h")' in out.stderr
    assert 'violates PodSecurity "baseline:latest": privileged (container "app" must not set ' \
           'securityContext.privileged=true)' in out.stderr
    assert "pod/big-1 created" in out.stdout
    assert 'pods "big-2" is forbidden: exceeded quota: student-quota, requested: requests.memory=700Mi' in out.stderr
    status = run(*LABKIT, "class", "status", "--name", room["name"]).stdout
    assert "student-3" in status and "700Mi/1Gi" in status


def test_class_check_writes_a_gradebook_that_matches_what_students_did(room) -> None:
    out = run(*LABKIT, "class", "check", "--name", room["name"])
    assert "1 of 3 passed" in out.stdout
    rows = list(csv.DictReader((room["dir"] / "gradebook.csv").open()))
    assert [(r["student"], r["exercise"], r["passed"]) for r in rows] == [
        ("student-1", "14.1", "true"), ("student-2", "14.1", "false"), ("student-3", "14.1", "false")]
    assert all(r["when"].endswith("Z") for r in rows)


def test_a_node_joins_over_the_veth_with_a_bootstrap_token_and_runs_a_pod(room, veth) -> None:
    join_cmd = next(line for line in room["out"].splitlines() if "labkit node join" in line).split()
    token = join_cmd[join_cmd.index("--token") + 1]
    server = join_cmd[join_cmd.index("--server") + 1]
    assert veth.host_ip in server
    proc = subprocess.Popen(["ip", "netns", "exec", veth.netns, *LABKIT, "node", "join", "--server", server,
                             "--token", token, "--ca-cert", str(room["dir"] / "ca.crt"), "--node-name", "laptop-1",
                             "--runtime", "simulated", "--dir", str(room["dir"] / "laptop-1")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        wait_for(lambda: "laptop-1" in teacher(room, "get", "nodes", check=False).stdout
                 and " Ready" in teacher(room, "get", "node", "laptop-1").stdout, 60, "node laptop-1 Ready")
        user = teacher(room, "get", "csr", "-o", "jsonpath={.items[*].status.conditions[*].type}").stdout
        assert "Approved" in user
        p = room["dir"] / "on-laptop.json"
        p.write_text(json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "on-laptop"},
                                 "spec": {"nodeName": "laptop-1", "containers": [
                                     {"name": "app", "image": "busybox", "command": ["sleep", "60"]}]}}))
        teacher(room, "create", "-n", "default", "-f", str(p))
        wait_for(lambda: teacher(room, "get", "pod", "on-laptop", "-n", "default", "-o",
                                 "jsonpath={.status.phase}").stdout == "Running", 60, "the pod Running on laptop-1")
        teacher(room, "delete", "pod", "on-laptop", "-n", "default", "--grace-period", "0", "--wait=false")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_labkit_gc_cleans_up_a_killed_class(room) -> None:
    cluster = json.loads((STATE / "clusters" / room["info"]["cluster"] / "cluster.json").read_text())
    pids = [c["pid"] for c in cluster["components"].values()]
    os.kill(room["info"]["pid"], signal.SIGKILL)  # the class server, as a crash or a kill -9 would
    wait_for(lambda: "classes" in run(*LABKIT, "gc", "--dry-run", "--only", "classes").stdout, 30,
             "gc to see the killed class")
    run(*LABKIT, "gc", "--only", "classes", timeout=120)
    assert not (STATE / "classes" / room["name"]).exists()
    assert not (STATE / "clusters" / room["info"]["cluster"]).exists()
    assert not [p for p in pids if Path(f"/proc/{p}").exists()
                and b"labkit" in Path(f"/proc/{p}/cmdline").read_bytes()]
    assert not (room["dir"] / "kubeconfigs").exists() and not (room["dir"] / "handout.html").exists()
    assert (room["dir"] / "gradebook.csv").exists()  # the teacher's record stays
