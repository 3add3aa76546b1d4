"""labkit.mesos: the v1 scheduler HTTP API, DRF offers, and two framework processes on one master.

Tasks run as containers on the host's best labkit runtime (native when root; the simulated
runtime's plain processes otherwise); each test's master says which in ``runtime_reason``.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from labkit.mesos.client import CallRefused, SchedulerClient, offered, task_info
from labkit.mesos.master import Master
from labkit.mesos.protocol import TaskState, read_record

REPO = Path(__file__).resolve().parents[1]


def wait_for(pred, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def master():
    # LABKIT_MESOS_RUNTIME=simulated tries the fallback a host without root gets
    m = Master(runtime=os.environ.get("LABKIT_MESOS_RUNTIME"), heartbeat_interval=0.3, allocation_interval=0.05, seed=1,
               kill_grace_seconds=0.2).start()
    print("tasks ran on:", m.runtime_reason)
    try:
        yield m
    finally:
        m.stop()


def raw_post(url: str, body: dict, headers: dict | None = None) -> tuple[int, str]:
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request("POST", "/api/v1/scheduler", json.dumps(body), {"Content-Type": "application/json", **(headers or {})})
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    return resp.status, text


class Greedy:
    """An in-test scheduler: launches one task of a fixed shape per offer while one fits,
    declines the rest; counts what it ran."""

    def __init__(self, url: str, name: str, cpus: float, mem: float) -> None:
        self.client = SchedulerClient(url)
        self.name, self.cpus, self.mem = name, cpus, mem
        self.running: set[str] = set()
        self.offers_seen: list[dict] = []
        self.events: list[dict] = []
        self.n = 0
        self.launch = True
        self.decline_refuse = 5.0

    def start(self) -> Greedy:
        self.client.subscribe({"user": "root", "name": self.name})
        threading.Thread(target=self._loop, daemon=True).start()
        return self

    def _loop(self) -> None:
        while (event := self.client.events.get()) is not None:
            self.events.append(event)
            try:
                if event["type"] == "OFFERS":
                    for offer in event["offers"]["offers"]:
                        self._offer(offer)
                elif event["type"] == "UPDATE":
                    st = event["update"]["status"]
                    if st["state"] == "TASK_RUNNING":
                        self.running.add(st["task_id"]["value"])
                    elif TaskState[st["state"]].terminal:
                        self.running.discard(st["task_id"]["value"])
                    self.client.acknowledge(st)
            except CallRefused:
                return

    def _offer(self, offer: dict) -> None:
        self.offers_seen.append(offer)
        have = offered(offer)
        oid = offer["id"]["value"]
        if self.launch and have.get("cpus", 0) >= self.cpus and have.get("mem", 0) >= self.mem:
            self.n += 1
            ti = task_info(f"{self.name}-{self.n}", offer["agent_id"]["value"], "sleep 60", self.cpus, self.mem)
            self.client.accept([oid], [ti], refuse_seconds=0)
        else:
            self.client.decline([oid], self.decline_refuse)


def test_drf_nsdi_example(master):
    """9 CPUs, 18 GB; A's tasks <1 CPU, 4 GB>, B's <3 CPU, 1 GB>: DRF gives A 3 tasks and B 2,
    each with a dominant share of 2/3 (Ghodsi et al., NSDI 2011)."""
    a = Greedy(master.url, "A", 1, 4096).start()
    b = Greedy(master.url, "B", 3, 1024).start()
    master.add_agent("agent-1", cpus=9, mem=18 * 1024)
    wait_for(lambda: len(a.running) + len(b.running) == 5, what="five tasks running")
    wait_for(lambda: any(offered(o).get("cpus", 0) == 0 for o in a.offers_seen + b.offers_seen),
             what="the memory-only leftover offered")  # nothing else fits: the cluster is full
    assert (len(a.running), len(b.running)) == (3, 2)
    state = master.snapshot()
    shares = {f["name"]: round(f["dominant_share"], 4) for f in state["frameworks"].values()}
    assert shares == {"A": round(2 / 3, 4), "B": round(2 / 3, 4)}
    assert all(t["state"] == "TASK_RUNNING" for t in state["tasks"])
    assert all(t["container_id"] for t in state["tasks"])  # a lab can exec into a running task


def test_decline_filters_change_who_gets_offers(master):
    x = Greedy(master.url, "X", 1, 64)
    y = Greedy(master.url, "Y", 1, 64)
    x.launch = y.launch = False
    x.decline_refuse = 0  # declining without a filter: X, first by DRF order, is offered again
    x.start()
    y.start()
    master.add_agent("agent-1", cpus=1, mem=256)
    wait_for(lambda: len(x.offers_seen) >= 3, what="X offered again")
    assert not y.offers_seen
    x.decline_refuse = 60  # now X's decline leaves a 60 s filter: the agent goes to Y
    wait_for(lambda: y.offers_seen, what="Y offered")
    seen = len(x.offers_seen)
    y.decline_refuse = 60
    time.sleep(0.3)  # several allocation rounds: both filtered, nobody is offered
    assert len(x.offers_seen) == seen
    x.client.call("REVIVE", {})  # clears X's filters: offers come back at once
    wait_for(lambda: len(x.offers_seen) > seen, what="X offered after REVIVE")
    x.client.call("SUPPRESS", {})
    x.decline_refuse = 0
    seen = len(x.offers_seen)
    time.sleep(0.3)
    assert len(x.offers_seen) <= seen + 1  # at most the one in flight when SUPPRESS came


def test_http_api_wire(master):
    """RecordIO stream, Mesos-Stream-Id, Mesos' error messages, UPDATE/ACKNOWLEDGE, KILL, RECONCILE,
    HEARTBEAT and RESCIND on agent removal."""
    u = urllib.parse.urlsplit(master.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request("POST", "/api/v1/scheduler",
                 json.dumps({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "root", "name": "wire"}}}),
                 {"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type") == "application/json"
    assert resp.getheader("Transfer-Encoding") == "chunked"
    stream_id = resp.getheader("Mesos-Stream-Id")
    first_line = resp.readline()
    assert first_line.strip().isdigit()  # RecordIO: the length, a newline, then the JSON
    subscribed = json.loads(resp.read(int(first_line)))
    assert subscribed["type"] == "SUBSCRIBED"
    fid = subscribed["subscribed"]["framework_id"]["value"]
    assert subscribed["subscribed"]["heartbeat_interval_seconds"] == 0.3

    sub = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "root", "name": "x"}}}
    assert raw_post(master.url, sub, {"Mesos-Stream-Id": stream_id}) == (
        400, "Subscribe calls should not include the 'Mesos-Stream-Id' header")
    assert raw_post(master.url, sub, {"Accept": "text/html"})[0] == 406
    assert raw_post(master.url, {"type": "NOPE"})[0] == 400
    assert raw_post(master.url, {"type": "SHUTDOWN"})[0] == 501
    revive = {"type": "REVIVE", "framework_id": {"value": fid}}
    assert raw_post(master.url, revive) == (
        400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header")
    code, text = raw_post(master.url, revive, {"Mesos-Stream-Id": "nope"})
    assert code == 400 and text.startswith("The stream ID 'nope' included in this request didn't match")
    assert raw_post(master.url, {"type": "REVIVE", "framework_id": {"value": "x"}})[1] == "Framework cannot be found"
    assert raw_post(master.url, revive, {"Mesos-Stream-Id": stream_id}) == (202, "")

    events = []
    held: dict[str, dict] = {}  # the latest offer for each hostname, whenever it came

    deadline = time.monotonic() + 20  # heartbeats keep the stream busy: bound the wait here

    def next_event(kind: str) -> dict:
        while True:
            assert time.monotonic() < deadline, f"no {kind} event; saw {events[-10:]}"
            ev = read_record(resp)
            assert ev is not None, "stream ended"
            events.append(ev["type"])
            if ev["type"] == "OFFERS":
                held.update({o["hostname"]: o for o in ev["offers"]["offers"]})
            if ev["type"] == kind:
                return ev

    def offer_from(hostname: str) -> dict:
        while hostname not in held:
            next_event("OFFERS")
        return held.pop(hostname)

    def call(body: dict) -> int:
        return raw_post(master.url, {"framework_id": {"value": fid}, **body}, {"Mesos-Stream-Id": stream_id})[0]

    aid = master.add_agent("agent-w", cpus=2, mem=512)
    offer = offer_from("agent-w")
    assert offer["agent_id"]["value"] == aid and offer["hostname"] == "agent-w"
    assert {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2.0}, "role": "*"} in offer["resources"]
    ti = task_info("t1", aid, "sleep 60", 0.5, 64)
    assert call({"type": "ACCEPT", "accept": {"offer_ids": [offer["id"]],
                                              "operations": [{"type": "LAUNCH", "launch": {"task_infos": [ti]}}]}}) == 202

    def next_update() -> dict:
        status = next_event("UPDATE")["update"]["status"]
        if "uuid" in status:
            assert call({"type": "ACKNOWLEDGE", "acknowledge": {"agent_id": status["agent_id"],
                                                                "task_id": status["task_id"],
                                                                "uuid": status["uuid"]}}) == 202
        return status

    assert next_update()["state"] == "TASK_STARTING"
    running = next_update()
    assert running["state"] == "TASK_RUNNING" and running["agent_id"]["value"] == aid
    assert call({"type": "RECONCILE", "reconcile": {"tasks": [{"task_id": {"value": "t1"}},
                                                              {"task_id": {"value": "ghost"}}]}}) == 202
    rec = [next_update(), next_update()]
    assert {(s["task_id"]["value"], s["state"], s["reason"]) for s in rec} == {
        ("t1", "TASK_RUNNING", "REASON_RECONCILIATION"), ("ghost", "TASK_LOST", "REASON_RECONCILIATION")}
    assert call({"type": "KILL", "kill": {"task_id": {"value": "t1"}, "agent_id": {"value": aid}}}) == 202
    killed = next_update()
    assert killed["state"] == "TASK_KILLED" and TaskState[killed["state"]] == 4
    next_event("HEARTBEAT")
    assert call({"type": "DECLINE", "decline": {"offer_ids": []}}) == 202
    # an outstanding offer is rescinded when its agent goes away
    master.add_agent("agent-v", cpus=1, mem=128)
    offer = offer_from("agent-v")
    master.remove_agent(offer["agent_id"]["value"])
    assert next_event("RESCIND")["rescind"]["offer_id"] == offer["id"]
    # a task asking for more than its offer holds is refused with TASK_ERROR, and nothing runs
    offer = offer_from("agent-w")
    big = task_info("huge", offer["agent_id"]["value"], "true", 64, 64)
    assert call({"type": "ACCEPT", "accept": {"offer_ids": [offer["id"]],
                                              "operations": [{"type": "LAUNCH", "launch": {"task_infos": [big]}}]}}) == 202
    err = next_update()
    assert (err["state"], err["reason"]) == ("TASK_ERROR", "REASON_TASK_INVALID")
    assert "more resources" in err["message"]
    assert call({"type": "TEARDOWN"}) == 202
    conn.close()


def test_failover_keeps_tasks_and_offer_timeout_rescinds():
    """A scheduler that reconnects within failover_timeout keeps its framework id and tasks and is sent
    the update it had not acknowledged; an offer held past --offer_timeout is rescinded."""
    with Master(heartbeat_interval=5, allocation_interval=0.05, offer_timeout=0.3, kill_grace_seconds=0.2) as m:
        info = {"user": "root", "name": "failover", "failover_timeout": 30}
        c = SchedulerClient(m.url)
        c.subscribe(info)
        aid = m.add_agent("agent-1", cpus=1, mem=256)
        ev = c.events.get(timeout=5)
        offer = ev["offers"]["offers"][0]
        c.accept([offer["id"]["value"]], [task_info("keep", aid, "sleep 60", 0.5, 64)], refuse_seconds=0)
        starting = c.events.get(timeout=10)["update"]["status"]
        assert starting["state"] == "TASK_STARTING"  # not acknowledged: it comes again after failover
        fid = c.framework_id
        c.close()
        wait_for(lambda: not m.snapshot()["frameworks"][fid]["connected"], what="the master to see the disconnect")
        c2 = SchedulerClient(m.url)
        c2.subscribe({**info, "id": {"value": fid}})
        assert c2.framework_id == fid
        again = wait_for(lambda: next((e for e in iter(lambda: c2.events.get(timeout=5), None)
                                       if e["type"] == "UPDATE"), None), what="the unacknowledged update")
        assert again["update"]["status"]["uuid"] == starting["uuid"]
        assert [t["task_id"] for t in m.snapshot()["tasks"]] == ["keep"]
        # offers nobody answers are taken back after offer_timeout
        rescinded = wait_for(lambda: next((e for e in iter(lambda: c2.events.get(timeout=5), None)
                                           if e["type"] == "RESCIND"), None), what="a RESCIND")
        assert rescinded["rescind"]["offer_id"]["value"]
        c2.call("TEARDOWN")
        c2.close()
        wait_for(lambda: not m.snapshot()["tasks"], what="TEARDOWN to kill the task")


def _framework(module: str, url: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", f"labkit.mesos.frameworks.{module}", "--master", url, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)


def _follow(proc: subprocess.Popen) -> list[dict]:
    """The framework's JSON lines, read as they come (the list grows while the process runs)."""
    lines: list[dict] = []

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(json.loads(line))
    threading.Thread(target=read, daemon=True).start()
    return lines


def test_service_and_batch_frameworks_share_one_master(master):
    """Two framework processes over HTTP: both are offered resources and run containers; the
    service's hostname:UNIQUE keeps its 4 instances to at most one per agent (3 agents: 3 run)."""
    for i in range(3):
        master.add_agent(f"agent-{i + 1}", cpus=1, mem=256)
    service = _framework("service", master.url, "--instances", "4", "--constraint", "hostname:UNIQUE",
                         "--cmd", "sleep 60", "--health-cmd", "true", "--health-interval", "0.2",
                         "--refuse-seconds", "0.2")
    s_lines = _follow(service)
    batch = _framework("batch", master.url, "--tasks", "5", "--cmd", 'echo "$MESOS_TASK_ID on $(hostname)"',
                       "--refuse-seconds", "1")
    try:
        out, err = batch.communicate(timeout=20)
        assert batch.returncode == 0, err
        lines = [json.loads(line) for line in out.splitlines()]
        assert lines[-1] == {**lines[-1], "event": "done", "finished": 5, "failed": 0}
        assert any(e["event"] == "launch" for e in lines)

        def service_tasks():
            ts = [t for t in master.snapshot()["tasks"] if t["name"] == "web"]
            return ts if len(ts) == 3 and all(t["healthy"] for t in ts) else None

        tasks = wait_for(service_tasks, what="3 healthy service tasks")
        assert sorted(t["hostname"] for t in tasks) == ["agent-1", "agent-2", "agent-3"]
        assert all(t["state"] == "TASK_RUNNING" for t in tasks)
        done = [t for t in master.snapshot()["completed_tasks"] if t["name"].startswith("job-")]
        assert len(done) == 5 and {t["state"] for t in done} == {"TASK_FINISHED"}
        assert {t["stdout"] for t in done} == {f"{t['task_id']} on {t['hostname']}\n" for t in done}
        # the fourth instance has nowhere to go: every offer is for a host that already has one
        wait_for(lambda: any(e["event"] == "decline" and e["why"] == "constraint hostname:UNIQUE" for e in s_lines),
                 what="a decline for hostname:UNIQUE")
        assert sum(e["event"] == "launch" for e in s_lines) == 3
    finally:
        service.terminate()
        service.wait(timeout=10)
        batch.kill() if batch.poll() is None else None
    # the service's scheduler process is gone (failover_timeout 0): the master kills its tasks
    wait_for(lambda: not master.snapshot()["tasks"], what="the service's tasks killed")


def test_service_replaces_a_task_failing_its_health_check(master):
    """Marathon's promise: a task whose health check keeps failing is killed and replaced."""
    master.add_agent("agent-1", cpus=1, mem=256)
    service = _framework("service", master.url, "--instances", "1", "--cmd", "sleep 60",
                         "--health-cmd", "false", "--health-interval", "0.1", "--refuse-seconds", "0.2")
    lines = _follow(service)
    try:
        def killed():
            return [t for t in master.snapshot()["completed_tasks"] if t["state"] == "TASK_KILLED"]
        first = wait_for(killed, what="the unhealthy task killed")[0]
        assert first["healthy"] is None or first["healthy"] is False
        wait_for(lambda: [t for t in master.snapshot()["tasks"] if t["task_id"] != first["task_id"]],
                 what="a replacement task")
        wait_for(lambda: sum(e["event"] == "launch" for e in lines) >= 2, what="the framework to relaunch")
    finally:
        service.terminate()
        service.wait(timeout=10)
    unhealthy = [e for e in lines if e["event"] == "update" and e["state"] == "TASK_KILLED"]
    assert unhealthy and "health check failed" in unhealthy[0]["message"]
    wait_for(lambda: not master.snapshot()["tasks"], what="the service's tasks killed")


def test_service_rolls_out_a_new_version_by_its_upgrade_strategy(master, tmp_path):
    """SIGHUP after editing the app file: minimumHealthCapacity 0.5 and maximumOverCapacity 0 mean
    one old task is killed before each new one starts, and 1 of 2 stays healthy throughout."""
    for i in range(3):
        master.add_agent(f"agent-{i + 1}", cpus=1, mem=256)
    app = {"id": "/web", "cmd": "sleep 60", "instances": 2, "cpus": 0.1, "mem": 32,
           "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"}, "intervalSeconds": 0.1}],
           "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0}}
    spec = tmp_path / "web.json"
    spec.write_text(json.dumps(app))
    service = _framework("service", master.url, "--app", str(spec), "--refuse-seconds", "0.1")
    lines = _follow(service)
    try:
        def healthy_web():
            ts = [t for t in master.snapshot()["tasks"] if t["name"] == "web" and t["healthy"]]
            return ts if len(ts) == 2 else None
        v1 = {t["task_id"] for t in wait_for(healthy_web, what="2 healthy v1 tasks")}
        spec.write_text(json.dumps({**app, "cmd": "sleep 61"}))
        service.send_signal(signal.SIGHUP)
        wait_for(lambda: any(e["event"] == "deployment-finished" for e in lines), what="the deployment to finish")
        v2 = {t["task_id"] for t in wait_for(healthy_web, what="2 healthy v2 tasks")}
    finally:
        service.terminate()
        service.wait(timeout=10)
    assert not v1 & v2
    kills = [e for e in lines if e["event"] == "kill"]
    assert len(kills) == 2 and all(k["version"] == 1 and k["healthy_left"] >= 1 for k in kills)
    launches = [e for e in lines if e["event"] == "launch"]
    assert [e["version"] for e in launches] == [1, 1, 2, 2]
    assert max(e["tasks"] for e in launches) <= 2  # maximumOverCapacity 0: never more than instances
    wait_for(lambda: not master.snapshot()["tasks"], what="the service's tasks killed")


def test_refuse_filter_lasts_refuse_seconds_default_five():
    """The allocator's clock is passed in, so the 5 s default is checked without waiting."""
    from labkit.mesos.allocator import DRFAllocator
    from labkit.mesos.master import _refuse_seconds

    assert _refuse_seconds({}) == 5.0 and _refuse_seconds({"filters": {"refuse_seconds": 0.5}}) == 0.5
    alloc = DRFAllocator(seed=0)
    alloc.add_agent("a1", {"cpus": 4.0, "mem": 1024.0})
    alloc.add_framework("f1")
    alloc.add_framework("f2")
    [(fid, aid, res)] = alloc.allocate(now=0.0)
    assert fid == "f1"  # equal shares: the earlier subscriber
    alloc.recover("f1", aid, res, refuse_seconds=_refuse_seconds({}), now=0.0)  # a DECLINE with no filters
    for now in (1.0, 4.9):
        [(fid, _, res)] = alloc.allocate(now=now)
        assert fid == "f2"
        alloc.recover("f2", aid, res, refuse_seconds=0, now=now)
    [(fid, _, _)] = alloc.allocate(now=5.0)
    assert fid == "f1"


def test_task_ids_are_per_framework(master):
    """Two frameworks may both name a task "web-0" on one agent; a KILL reaches only the caller's."""
    aid = master.add_agent("agent-1", cpus=2, mem=512)
    clients = []
    for name in ("one", "two"):
        c = SchedulerClient(master.url)
        c.subscribe({"user": "root", "name": name})
        clients.append(c)

    def run_same(c: SchedulerClient) -> None:
        while True:
            ev = c.events.get(timeout=10)
            if ev["type"] == "OFFERS":
                c.accept([ev["offers"]["offers"][0]["id"]["value"]], [task_info("web-0", aid, "sleep 60", 0.5, 64)],
                         refuse_seconds=0)
            elif ev["type"] == "UPDATE":
                c.acknowledge(ev["update"]["status"])
                if ev["update"]["status"]["state"] == "TASK_RUNNING":
                    return

    for c in clients:
        run_same(c)
    one, two = clients
    one.call("KILL", {"task_id": {"value": "web-0"}, "agent_id": {"value": aid}})
    def states():  # a terminal task stays in the master's list until its update is acknowledged
        return {t["framework_id"]: t["state"] for t in master.snapshot()["tasks"] if t["task_id"] == "web-0"}
    wait_for(lambda: states()[one.framework_id] == "TASK_KILLED", what="one's task killed")
    assert states()[two.framework_id] == "TASK_RUNNING"
    for c in clients:
        c.close()


def test_batch_per_offer_caps_tasks_launched_from_one_offer(master):
    """--per-offer N: at most N tasks from one offer, so the allocator's order decides the rest."""
    from labkit.mesos.frameworks.process import FrameworkProcess

    master.add_agent("agent-1", cpus=1, mem=256)
    with FrameworkProcess("batch", master.url, "--tasks", "4", "--per-offer", "2", "--cmd", "true",
                          "--refuse-seconds", "0") as batch:
        done = batch.wait_for(lambda e: e["event"] == "done", timeout=20)
        assert (done["finished"], done["failed"]) == (4, 0)
        assert [len(e["tasks"]) for e in batch.of("launch")] == [2, 2]
    with pytest.raises(ValueError, match="unknown framework"):
        FrameworkProcess("marathon", master.url)


def test_offers_with_drf_keep_tenant_shares_closer_than_arrival_order():
    """The comparison lab 42 and bench_schedulers.py print: one seeded workload, four placements."""
    from labkit.compare import placement

    results = {r.scheduler: r for r in placement.compare(tasks=200, machines=10)}
    assert list(results) == ["offers+DRF", "offers+DRF, 1/offer, refuse 0s", "kube-style", "Borg-style best fit"]
    gap = {name: placement.spread(list(r.dominant_share.values())) for name, r in results.items()}
    assert gap["offers+DRF"] < gap["kube-style"] and gap["offers+DRF"] < gap["Borg-style best fit"]
    for r in results.values():
        assert all(c <= 16 + 1e-6 and m <= 64 + 1e-6 for c, m in r.used)  # nothing placed beyond a machine
        assert 0 <= r.stranded_cpus <= r.cell_cpus and 0 <= r.stranded_gib <= r.cell_gib
        assert sum(r.placed.values()) > 0 and r.submitted == {"A": 100, "B": 100}
    assert "offers+DRF" in placement.table(list(results.values()))
