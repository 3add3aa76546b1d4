"""labkit.swarm: three Docker Engines in their own namespaces form one swarm of managers.

One swarm is shared by the module (starting one takes seconds); the tests run in file order: the
swarm forms, a published port answers on a node without a task, quorum is lost and regained, and
the swarm is torn down without a trace. A last test kills an owner with SIGKILL and lets
``labkit gc`` clean up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from labkit.swarm import Swarm, host_allows, leftovers, network
from labkit.swarm.engine import EngineError

HOST = host_allows()
pytestmark = pytest.mark.skipif(not HOST.multi_node, reason="needs root, ip and the Docker Engine binaries "
                                "(dockerd, docker) for nested engines")

WEB = "mkdir -p /www && echo hello from $$(hostname) > /www/index.html && exec httpd -f -p 80 -h /www"
COMPOSE = textwrap.dedent(f"""\
    version: "3.8"
    services:
      web:
        image: labkit/busybox:latest
        hostname: "{{{{.Node.Hostname}}}}-web{{{{.Task.Slot}}}}"
        command: ["sh", "-c", "{WEB}"]
        networks: [appnet]
        deploy:
          replicas: 1
          endpoint_mode: dnsrr
          placement: {{constraints: ["node.hostname == node-2"]}}
      gateway:
        image: labkit/busybox:latest
        command: ["nc", "-ll", "-p", "8080", "-e", "nc", "web", "80"]
        networks: [appnet]
        ports: [{{target: 8080, published: 8080, mode: host}}]
        deploy: {{mode: global}}
      mesh:
        image: labkit/busybox:latest
        command: ["sh", "-c", "{WEB}"]
        ports: [{{target: 80, published: 8081, mode: ingress}}]
        deploy:
          replicas: 1
          placement: {{constraints: ["node.hostname == node-2"]}}
    networks:
      appnet: {{driver: overlay}}
    """)


def wait_for(pred, timeout: float = 30, what: str = "condition"):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def swarm():  # noqa: ANN201
    sw = Swarm(managers=3)
    sw.start()
    try:
        yield sw
    finally:
        sw.close()


def test_three_managers_form_one_swarm(swarm: Swarm) -> None:
    nodes = swarm.nodes()
    assert sorted(n["Hostname"] for n in nodes) == ["node-1", "node-2", "node-3"]
    assert all(n["Status"] == "Ready" for n in nodes)
    assert sorted(n["ManagerStatus"] for n in nodes) == ["Leader", "Reachable", "Reachable"]
    roots = {swarm.docker(i, "info", "--format", "{{.DockerRootDir}}") for i in (1, 2, 3)}
    assert roots == {str(swarm.node(i).data_root) for i in (1, 2, 3)}, "each engine has its own data root"


def test_a_published_port_answers_on_a_node_without_a_task(swarm: Swarm, tmp_path: Path) -> None:
    (tmp_path / "stack.yml").write_text(COMPOSE)
    swarm.docker(1, "stack", "deploy", "-d", "--resolve-image", "never", "-c", str(tmp_path / "stack.yml"), "shop")
    assert [t["Node"] for t in swarm.wait_running("shop_web", 1)] == ["node-2"]
    swarm.wait_running("shop_gateway", 3)
    swarm.wait_running("shop_mesh", 1)
    # asked at once: the mesh port, where it cannot answer, takes its whole timeout
    with ThreadPoolExecutor(3) as pool:
        mesh_answer = pool.submit(swarm.http_get, 1, 8081, timeout=2)
        # no web task on node-1 or node-3: the gateway there reaches node-2 over the overlay
        gateways = [pool.submit(wait_for, lambda n=node: "hello from node-2-web1" in swarm.http_get(n, 8080), 15,
                                f"the gateway on node-{node}") for node in (1, 3)]
        assert [g.result() for g in gateways] == [True, True]
    mesh = mesh_answer.result()
    if HOST.ipvs:
        assert "hello from" in mesh, "the ingress routing mesh answers on node-1, which has no task"
    else:  # the kernel has no IPVS: Swarm's own mesh cannot balance; the lab says so
        assert mesh.startswith("no answer"), mesh


def test_quorum_loss_stops_new_scheduling_and_recovery_heals(swarm: Swarm) -> None:
    lead = swarm.leader()
    assert lead is not None
    others = [i for i in (1, 2, 3) if i != lead]
    for i in others:
        swarm.stop_engine(i)
    # one manager of three is no majority: the scale never commits, and the leader steps down
    with pytest.raises(EngineError, match="leader"):
        wait_for(lambda: swarm.docker(lead, "service", "scale", "-d", "shop_mesh=2", timeout=30) and False, 40,
                 "a refusal")
    running = swarm.docker(lead, "ps", "--format", "{{.Names}}")
    assert "shop_gateway" in running, "the task on the surviving node keeps running"
    for i in others:
        swarm.start_engine(i, wait=False)
    wait_for(lambda: swarm.leader(via=(lead,)) is not None, 60, "a new leader")
    # healed: the swarm schedules new work again
    swarm.docker(lead, "service", "create", "-d", "--name", "healed", "--constraint", f"node.hostname == node-{lead}",
                 "--no-resolve-image", "labkit/busybox:latest", "sleep", "600")
    assert len(swarm.wait_running("healed", 1, via=lead)) == 1


def test_teardown_leaves_nothing(swarm: Swarm) -> None:
    folder = swarm.folder
    swarm.close()
    assert not folder.exists()
    assert not leftovers.engine_pids(folder, f"swarm-{swarm.id}-"), "an engine or container process was left"
    assert str(folder) not in Path("/proc/self/mountinfo").read_text(), "a mount was left"
    assert not list(network.NETNS_DIR.glob(f"labkit-swarm-{swarm.id}-*")), "a network namespace was left"
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    assert network.bridge_name(swarm.id) not in links, "the bridge or a veth was left"
    assert not list(Path("/sys/fs/cgroup").glob(f"*/labkit/swarm-{swarm.id}-*")), "a cgroup was left"
    rules = subprocess.run(["iptables", "-w", "-S", "FORWARD"], capture_output=True, text=True).stdout
    assert f"labkit swarm {swarm.id}" not in rules, "the FORWARD rule was left"


def test_gc_removes_a_swarm_whose_owner_was_killed() -> None:
    from labkit.runtime import gc

    code = "from labkit.swarm import Swarm; import time; s = Swarm(managers=1, images=()); s.start(); print(s.id, flush=True); time.sleep(600)"
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    swarm_id = owner.stdout.readline().strip()
    assert swarm_id, "the owner process did not start its swarm"
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait()
    assert any(swarm_id in leak.what for leak in gc.find_leaks(["swarm-engines"]))
    assert [leak for leak in gc.collect(["swarm-engines"]) if swarm_id in leak.what] == []
    folder = leftovers.swarms_dir() / swarm_id
    assert not folder.exists() and not leftovers.engine_pids(folder, f"swarm-{swarm_id}-")
    assert not list(network.NETNS_DIR.glob(f"labkit-swarm-{swarm_id}-*"))
