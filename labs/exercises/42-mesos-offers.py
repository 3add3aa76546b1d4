"""Lab 42's exercises: a Marathon app under a constraint, and a framework that lets another one in.

Each verify starts a fresh labkit Mesos master with its own agents, runs the learner's file against
it as a real framework process (real containers for the tasks), reads the master's state and the
frameworks' reports, and stops everything again.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from labkit.mesos.frameworks.process import FrameworkProcess
from labkit.mesos.master import Master
from labkit.practice import Exercise, Target, Verdict

PAGE = "mkdir -p /www && echo hello from $(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www"


def _state(m: Master) -> dict:
    with urllib.request.urlopen(m.url + "/state", timeout=10) as r:
        return json.load(r)


def _until(pred, timeout: float) -> object:
    end = time.monotonic() + timeout
    while not (v := pred()) and time.monotonic() < end:
        time.sleep(0.1)
    return v


# --------------------------------------------------------------------------- 42.1 a Marathon app
def _app(t: Target) -> Path:
    return t.workdir / "web.json"


def _verify_app(t: Target) -> Verdict:
    path = _app(t)
    if not path.exists():
        return Verdict.not_yet(f"write the app definition to {path} (Marathon's JSON: id, cmd, instances, cpus, "
                               "mem, constraints, healthChecks)")
    try:
        json.loads(path.read_text())
    except ValueError as exc:
        return Verdict.not_yet(f"{path.name} is not valid JSON: {exc}")
    with Master(allocation_interval=0.05, seed=1, kill_grace_seconds=0.2) as m:
        for i in range(3):
            m.add_agent(f"agent-{i + 1}", cpus=2, mem=1024)
        # short filters, so that offers for the 4th instance come back (and are declined) within the check
        fw = FrameworkProcess("service", m.url, "--app", str(path), "--refuse-seconds", "0.3")
        try:
            healthy = lambda: [x for x in _state(m)["tasks"] if x["healthy"]]  # noqa: E731
            _until(lambda: len(healthy()) >= 3 and fw.of("decline"), 15)
            tasks = _state(m)["tasks"]
            if fw.proc.poll() is not None:
                return Verdict.not_yet(f"the service framework refused the app: {fw.stderr_now().strip()[-300:]}")
            hosts = sorted(x["hostname"] for x in tasks if x["state"] == "TASK_RUNNING")
            if any(x["healthy"] is None for x in tasks):
                return Verdict.not_yet("the tasks run but report no health: add a COMMAND health check in "
                                       "healthChecks (e.g. wget -qO- http://127.0.0.1:8080/)")
            if len(hosts) != len(set(hosts)):
                return Verdict.not_yet(f"two instances share an agent ({hosts}): add the constraint "
                                       "[\"hostname\", \"UNIQUE\"]")
            if len(healthy()) < 3:
                return Verdict.not_yet(f"{len(healthy())} healthy instances on {hosts}; with instances 4 and three "
                                       "agents, three should run healthy (is the health check passing?)")
            why = {e.get("why") for e in fw.of("decline")}
            if "constraint hostname:UNIQUE" not in why:
                return Verdict.not_yet(f"three run, but no offer was declined because of the constraint "
                                       f"(reasons seen: {sorted(x for x in why if x)}): ask for 4 instances")
            page = m.runtime.exec_sync(healthy()[0]["container_id"], ["wget", "-qO-", "http://127.0.0.1:8080/"])
            if b"hello" not in page.stdout:
                return Verdict.not_yet(f"the web app answered {page.stdout[:80]!r}; it should serve a page "
                                       "that says hello on port 8080")
            return Verdict.ok(f"3 healthy web instances on {hosts}, the 4th declined by hostname:UNIQUE; "
                              f"the page says {page.stdout.decode().strip()!r}")
        finally:
            fw.stop()


def _solve_app(t: Target) -> None:
    t.workdir.mkdir(parents=True, exist_ok=True)
    _app(t).write_text(json.dumps({
        "id": "/web", "cmd": PAGE, "instances": 4, "cpus": 0.5, "mem": 64,
        "container": {"type": "DOCKER", "docker": {"image": "busybox"}},
        "constraints": [["hostname", "UNIQUE"]],
        "healthChecks": [{"protocol": "COMMAND", "command": {"value": "wget -qO- http://127.0.0.1:8080/"},
                          "intervalSeconds": 1}]}, indent=1))


# --------------------------------------------------------------------------- 42.2 let the other in
GREEDY = '''"""greedy.py: a framework with nothing to run that still answers every offer."""
import argparse

from labkit.mesos.client import SchedulerClient

ap = argparse.ArgumentParser()
ap.add_argument("--master", required=True)
client = SchedulerClient(ap.parse_args().master)
client.subscribe({"user": "root", "name": "greedy"})
print('{"event": "subscribed"}', flush=True)
while (event := client.events.get()) is not None:
    if event["type"] == "OFFERS":
        for offer in event["offers"]["offers"]:
            client.decline([offer["id"]["value"]], refuse_seconds=0)
'''


def _greedy(t: Target) -> Path:
    return t.workdir / "greedy.py"


def _setup_greedy(t: Target) -> None:
    t.workdir.mkdir(parents=True, exist_ok=True)
    if not _greedy(t).exists():
        _greedy(t).write_text(GREEDY)


def _verify_greedy(t: Target) -> Verdict:
    if not _greedy(t).exists():
        return Verdict.not_yet(f"{_greedy(t)} is missing: run this exercise's set-up (or copy it from the statement)")
    with Master(allocation_interval=0.05, seed=1, kill_grace_seconds=0.2) as m:
        m.add_agent("agent-1", cpus=1, mem=256)
        greedy = FrameworkProcess("greedy", m.url, script=str(_greedy(t)))
        batch = None
        try:
            if not _until(lambda: any(f["name"] == "greedy" for f in _state(m)["frameworks"].values()), 10):
                return Verdict.not_yet(f"greedy.py did not subscribe: {greedy.stderr_now().strip()[-300:]}")
            batch = FrameworkProcess("batch", m.url, "--tasks", "2", "--cpus", "0.5", "--mem", "32", "--cmd", "true")
            _until(lambda: batch.of("subscribed"), 10)
            done = _until(lambda: batch.of("done"), 3)  # two `true` jobs take well under a second once offered
            frameworks = _state(m)["frameworks"].values()
            if greedy.proc.poll() is not None or not any(f["name"] == "greedy" for f in frameworks):
                return Verdict.not_yet("greedy.py must stay subscribed (a framework that leaves proves nothing)")
            greedy_tasks = [x for x in _state(m)["tasks"] + _state(m)["completed_tasks"]
                            if x["framework_id"] != (batch.of("subscribed") or [{}])[0].get("framework_id")]
            if greedy_tasks:
                return Verdict.not_yet("greedy.py launched tasks of its own: it has nothing to run")
            if not done:
                offers = len(batch.of("launch")) + len(batch.of("decline"))
                return Verdict.not_yet(f"in 3 s the batch framework got {offers} offers and finished nothing: "
                                       "greedy.py declines with refuse_seconds=0, so DRF's tie (both at a "
                                       "share of 0) goes back to greedy.py every round")
            return Verdict.ok(f"the batch framework ran its 2 jobs ({done[0]}) while greedy.py stayed subscribed")
        finally:
            if batch is not None:
                batch.stop()
            greedy.stop()


def _solve_greedy(t: Target) -> None:
    _setup_greedy(t)
    src = _greedy(t).read_text()
    _greedy(t).write_text(src.replace('print(\'{"event": "subscribed"}\', flush=True)',
                                      'client.call("SUPPRESS", {})  # nothing to run: ask for no offers\n'
                                      'print(\'{"event": "subscribed"}\', flush=True)'))


EXERCISES = [
    Exercise(
        id="42.1",
        title="Four instances, three agents: a Marathon app under hostname:UNIQUE",
        statement=(
            "Write a Marathon app definition for the web app to `web.json` in your work folder: `instances: 4`, "
            "`cpus: 0.5`, `mem: 64`, the image `busybox`, a `cmd` that serves a page saying *hello* with "
            "`httpd -f -p 8080`, the constraint `[\"hostname\", \"UNIQUE\"]` and a `COMMAND` health check that "
            "fetches the page. The check runs it with the service framework on a fresh master with three agents: "
            "three instances must run healthy, one per agent, and the framework must decline offers for the "
            "fourth because of the constraint."),
        verify=_verify_app,
        solution=_solve_app,
        solution_text=("```json\n{\"id\": \"/web\", \"instances\": 4, \"cpus\": 0.5, \"mem\": 64,\n"
                       " \"cmd\": \"mkdir -p /www && echo hello from $(hostname) > /www/index.html && "
                       "exec httpd -f -p 8080 -h /www\",\n"
                       " \"container\": {\"type\": \"DOCKER\", \"docker\": {\"image\": \"busybox\"}},\n"
                       " \"constraints\": [[\"hostname\", \"UNIQUE\"]],\n"
                       " \"healthChecks\": [{\"protocol\": \"COMMAND\", \"command\": "
                       "{\"value\": \"wget -qO- http://127.0.0.1:8080/\"}, \"intervalSeconds\": 1}]}\n```"),
        concept="Marathon's app definition: instances, constraints, health checks",
        difficulty="easy",
        needs=("root",),
        timeout=40.0,
    ),
    Exercise(
        id="42.2",
        title="Let the other framework in",
        statement=(
            "`greedy.py` in your work folder is a framework with nothing to run, yet it answers every offer "
            "with a DECLINE and `refuse_seconds=0`. On a master with one agent it subscribes first, so a batch "
            "framework that subscribes after it never gets an offer. Change `greedy.py` so that the batch "
            "framework's two jobs run, while greedy.py stays subscribed and still launches nothing. "
            "(Two different calls of the scheduler API do it.)"),
        verify=_verify_greedy,
        solution=_solve_greedy,
        solution_text=("Either send `client.call(\"SUPPRESS\", {})` after subscribing (no offers until REVIVE), "
                       "or decline with a filter: `client.decline([...], refuse_seconds=30)`."),
        setup=_setup_greedy,
        concept="DECLINE filters and SUPPRESS decide who is offered what",
        difficulty="medium",
        timeout=30.0,
    ),
]
