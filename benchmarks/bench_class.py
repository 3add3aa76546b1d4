"""40 scripted students, each with its own token, run a lab's exercise loop at once against one
``labkit class up``; the same load against the same kind of cluster with authentication off, in
the same run, rounds taking turns (so a busy moment on the machine hits both alike).

Each student, every round, in their own namespace: apply a Deployment, scale it, get it, list and
watch its pods, ``can-i`` (a SelfSubjectAccessReview), try to read the next student's pods (must be
403), scale far past the quota (the quota must hold), delete. Printed: p50/p99 of mutating calls and
of reads beside the goals, throughput with auth+RBAC against auth off, cross-namespace successes,
quota overruns, and the authorizer's own cost per request with 1,000 RoleBindings.

    .venv/bin/python benchmarks/bench_class.py [--students 40] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import yaml

GOALS = {"mutating p99": 0.25, "reads p99": 0.10, "auth cost": 10.0}
MUTATING = {"apply", "scale", "delete", "overscale"}
READS = {"get", "list", "watch"}


@dataclass
class Student:
    name: str
    namespace: str
    token: str | None


@dataclass
class Run:
    server: str
    ssl: ssl.SSLContext | bool
    students: list[Student]
    latencies: dict[str, list[float]] = field(default_factory=dict)
    calls: int = 0
    seconds: float = 0.0
    cross_namespace_ok: int = 0
    errors: list[str] = field(default_factory=list)


def deployment(name: str, replicas: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"terminationGracePeriodSeconds": 0,
                                           "containers": [{"name": "app", "image": "busybox",
                                                           "command": ["sleep", "3600"]}]}}}}


async def call(session: aiohttp.ClientSession, run: Run, s: Student, kind: str, method: str, path: str,
               body: dict | None = None, ctype: str = "application/json", ok=(200, 201)) -> int:
    headers = {"Content-Type": ctype, "Accept": "application/json"}
    if s.token:
        headers["Authorization"] = f"Bearer {s.token}"
    t0 = time.perf_counter()
    async with session.request(method, run.server + path, data=json.dumps(body) if body is not None else None,
                               headers=headers, ssl=run.ssl) as r:
        if kind == "watch":
            await r.content.readline()  # the first event: the watch is serving
        else:
            await r.read()
        status = r.status
    run.latencies.setdefault(kind, []).append(time.perf_counter() - t0)
    run.calls += 1
    if status not in ok and kind != "cross":
        run.errors.append(f"{kind} {s.name}: HTTP {status}")
    return status


async def student_loop(session: aiohttp.ClientSession, run: Run, s: Student, other: Student, rnd: int) -> None:
    ns = s.namespace
    apps = f"/apis/apps/v1/namespaces/{ns}/deployments"
    name = f"web-{rnd}"
    await call(session, run, s, "apply", "POST", apps, deployment(name, 1))
    await call(session, run, s, "scale", "PATCH", f"{apps}/{name}/scale", {"spec": {"replicas": 2}},
               "application/merge-patch+json")
    await call(session, run, s, "get", "GET", f"{apps}/{name}")
    await call(session, run, s, "list", "GET", f"/api/v1/namespaces/{ns}/pods?labelSelector=app%3D{name}")
    await call(session, run, s, "watch", "GET",
               f"/api/v1/namespaces/{ns}/pods?watch=true&labelSelector=app%3D{name}&timeoutSeconds=1")
    await call(session, run, s, "can-i", "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
               {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": {"namespace": ns, "verb": "create", "group": "apps",
                                                "resource": "deployments"}}})
    status = await call(session, run, s, "cross", "GET", f"/api/v1/namespaces/{other.namespace}/pods", ok=(403,))
    if s.token and status < 300:
        run.cross_namespace_ok += 1
    await call(session, run, s, "overscale", "PATCH", f"{apps}/{name}/scale", {"spec": {"replicas": 50}},
               "application/merge-patch+json")
    await call(session, run, s, "delete", "DELETE", f"{apps}/{name}", {"propagationPolicy": "Background"})


async def one_round(run: Run, rnd: int) -> None:
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as session:
        n = len(run.students)
        t0 = time.perf_counter()
        await asyncio.gather(*(student_loop(session, run, s, run.students[(i + 1) % n], rnd)
                               for i, s in enumerate(run.students)))
        run.seconds += time.perf_counter() - t0


def quota_overruns(kubeconfig: str, namespaces: list[str]) -> int:
    """Namespaces whose pods (or requests) went past their quota's hard limits."""
    from kubernetes import client, config

    from labkit.client import quantity

    core = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
    over = 0
    for ns in namespaces:
        pods = [p for p in core.list_namespaced_pod(ns).items if p.status.phase not in ("Succeeded", "Failed")]
        for q in core.list_namespaced_resource_quota(ns).items:
            hard = q.spec.hard or {}
            if "pods" in hard and len(pods) > int(hard["pods"]):
                over += 1
            used = (q.status.used if q.status else None) or {}
            for k, v in hard.items():
                if k in used and quantity.parse(used[k]) > quantity.parse(v):
                    over += 1
    return over


def p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def class_up(students: int, folder: Path, name: str) -> tuple[dict, list[Student]]:
    subprocess.run([sys.executable, "-m", "labkit.cli", "class", "up", "--students", str(students), "--name", name,
                    "--dir", str(folder), "--nodes", "1", "--runtime", "simulated", "--check-interval", "0"],
                   check=True, capture_output=True, text=True, timeout=600)
    state = Path(os.environ.get("LABKIT_STATE", "/run/labkit")) / "classes" / name / "class.json"
    info = json.loads(state.read_text())
    out = []
    for s in info["students"]:
        doc = yaml.safe_load(Path(s["kubeconfig"]).read_text())
        out.append(Student(s["name"], s["namespace"], doc["users"][0]["user"]["token"]))
    return info, out


def ssl_for(kubeconfig: str) -> ssl.SSLContext:
    doc = yaml.safe_load(Path(kubeconfig).read_text())
    ctx = ssl.create_default_context(cadata=base64.b64decode(doc["clusters"][0]["cluster"]
                                                             ["certificate-authority-data"]).decode())
    return ctx


def authorizer_cost(bindings: int = 1000, requests: int = 20000) -> float | None:
    """Microseconds per authorize() with ``bindings`` RoleBindings loaded (auth's RBAC authorizer)."""
    try:
        from labkit.controlplane.apiserver.auth.attributes import Attributes
        from labkit.controlplane.apiserver.auth.rbac import RBACAuthorizer
        from labkit.controlplane.apiserver.auth.user import UserInfo
    except ImportError:
        return None
    authz = RBACAuthorizer()
    items = []
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "edit"},
            "rules": [{"apiGroups": ["", "apps"], "resources": ["pods", "deployments"], "verbs": ["*"]}]}
    items.append(("/registry/clusterroles/edit", json.dumps(role).encode()))
    for i in range(bindings):
        b = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": "student-edit", "namespace": f"class-s{i}"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
             "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": f"s{i}"}]}
        items.append((f"/registry/rolebindings/class-s{i}/student-edit", json.dumps(b).encode()))
    authz.load(items)
    users = [UserInfo(f"s{i}", f"uid-{i}", ("system:authenticated",)) for i in range(bindings)]
    attrs = [Attributes(users[i % bindings], "list", True, "", "v1", "pods", "", f"class-s{(i * 7) % bindings}")
             for i in range(requests)]
    t0 = time.perf_counter()
    for a in attrs:
        authz.authorize(a)
    return (time.perf_counter() - t0) / requests * 1e6


def per_request_costs(rounds: int = 10, per_round: int = 50) -> dict[str, float]:
    """Milliseconds per sequential GET (one client, keep-alive) against three bare apiserver processes:
    plain HTTP, TLS only, and TLS + a token + Node,RBAC - so TLS's share of the cost stands apart from
    auth's. They take turns, ``per_round`` requests each, and the median round counts."""
    import requests as http

    from labkit.cluster.identities import ADMIN, Identities

    folder = Path(tempfile.mkdtemp(prefix="bench-class-pki-"))
    ids = Identities(folder, "https://127.0.0.1")
    ids.create()
    token = ids.add_user(*ADMIN)
    tls = ["--tls-cert-file", ids.tls.cert_file, "--tls-private-key-file", ids.tls.key_file]
    setups = {"plain HTTP": ([], None), "TLS only": (tls, None), "TLS + token + RBAC": (ids.apiserver_args(), token)}
    procs, sessions, times, conc = [], {}, {k: [] for k in setups}, {}
    try:
        for label, (flags, tok) in setups.items():
            proc = subprocess.Popen([sys.executable, "-m", "labkit.controlplane.apiserver", "--port", "0", "--store",
                                     "memory", "--compact-interval", "0", *flags],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            procs.append(proc)
            line = proc.stdout.readline() if proc.stdout else ""
            url = line.split("ready on ", 1)[1].split()[0]
            session = http.Session()
            if tok:
                session.headers["Authorization"] = f"Bearer {tok}"
            # (verify per call: a session's verify loses to $REQUESTS_CA_BUNDLE)
            sessions[label] = (session, url + "/api/v1/namespaces/default/configmaps",
                               str(ids.ca_file) if flags else True)
            for _ in range(30):  # warm up: connection, caches
                session.get(sessions[label][1], timeout=10, verify=sessions[label][2]).raise_for_status()
        for _ in range(rounds):
            for label, (session, path, verify) in sessions.items():
                t0 = time.perf_counter()
                for _ in range(per_round):
                    session.get(path, timeout=10, verify=verify)
                times[label].append((time.perf_counter() - t0) / per_round * 1000)
        for label, (session, path, verify) in sessions.items():  # the same GETs from 40 clients at once
            ctx = ssl.create_default_context(cafile=verify) if isinstance(verify, str) else False
            headers = dict(session.headers)
            conc[label] = [asyncio.run(_concurrent_gets(path, ctx, headers)) for _ in range(3)]
    finally:
        for session, _, _ in sessions.values():
            session.close()
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
    return {k: sorted(v)[len(v) // 2] for k, v in times.items()}, {k: sorted(v)[1] for k, v in conc.items()}


async def _concurrent_gets(url: str, ctx: ssl.SSLContext | bool, headers: dict, clients: int = 40,
                           each: int = 20) -> float:
    """Requests per second when ``clients`` keep-alive clients GET ``url`` ``each`` times at once."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def one() -> None:
            for _ in range(each):
                async with session.get(url, ssl=ctx, headers=headers) as r:
                    await r.read()

        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(clients)))
        return clients * each / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--students", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    from labkit.classroom import provision
    from labkit.classroom.roster import numbered
    from labkit.cluster import Cluster

    tmp = Path(tempfile.mkdtemp(prefix="bench-class-"))
    name = f"bench{uuid.uuid4().hex[:6]}"
    plain = Cluster(nodes=1, runtime="simulated", name=f"bench-plain-{uuid.uuid4().hex[:6]}")
    try:
        t0 = time.perf_counter()
        info, students = class_up(args.students, tmp / "class", name)
        up_seconds = time.perf_counter() - t0
        secure = Run(info["api"], ssl_for(info["teacher_kubeconfig"]), students)
        plain.start()
        api = plain.client()
        people = numbered(args.students)
        for s in people:
            provision.student(api, "bench", s)
        off = Run(plain.url, False, [Student(s.name, s.namespace, None) for s in people])
        for rnd in range(args.rounds):  # take turns: the machine's busy moments hit both
            asyncio.run(one_round(secure, rnd))
            asyncio.run(one_round(off, rnd))
        time.sleep(3)  # the ReplicaSet controller's last creates, before the quota is read
        over = quota_overruns(info["teacher_kubeconfig"], [s.namespace for s in students])
        over_off = quota_overruns(plain.kubeconfig, [s.namespace for s in off.students])
    finally:
        subprocess.run([sys.executable, "-m", "labkit.cli", "class", "down", "--name", name], capture_output=True,
                       timeout=300)
        plain.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    def agg(r: Run, kinds: set[str]) -> list[float]:
        return [x for k in kinds for x in r.latencies.get(k, [])]

    print(f"{args.students} students x {args.rounds} rounds; class up took {up_seconds:.1f} s; "
          f"cores {os.cpu_count()}")
    print(f"{'':<28}{'auth+RBAC':>12}{'auth off':>12}{'goal':>10}")
    for label, kinds, goal in (("mutating p50 (s)", MUTATING, None), ("mutating p99 (s)", MUTATING, "0.25"),
                               ("reads p50 (s)", READS, None), ("reads p99 (s)", READS, "0.10"),
                               ("can-i p99 (s)", {"can-i"}, None)):
        q = 0.5 if "p50" in label else 0.99
        print(f"{label:<28}{p(agg(secure, kinds), q):>12.3f}{p(agg(off, kinds), q):>12.3f}{goal or '':>10}")
    t_on, t_off = secure.calls / secure.seconds, off.calls / off.seconds
    cost = (1 - t_on / t_off) * 100
    print(f"{'throughput (calls/s)':<28}{t_on:>12.0f}{t_off:>12.0f}")
    print(f"{'auth+RBAC cost (%)':<28}{cost:>12.1f}{'':>12}{'<= 10':>10}")
    print(f"{'cross-namespace successes':<28}{secure.cross_namespace_ok:>12}{'(no auth)':>12}{'0':>10}")
    print(f"{'quota overruns':<28}{over:>12}{over_off:>12}{'0':>10}")
    costs, rates = per_request_costs()
    base, top = costs["plain HTTP"], rates["plain HTTP"]
    print("bare apiserver, one client, sequential GETs: " + ", ".join(
        f"{k} {v:.2f} ms ({v / base:.2f}x)" for k, v in costs.items()))
    print("bare apiserver, 40 clients at once, GETs/s:  " + ", ".join(
        f"{k} {v:.0f} ({v / top:.2f}x)" for k, v in rates.items()))
    us = authorizer_cost()
    print(f"{'authorizer, 1,000 bindings':<28}{(f'{us:.1f} us/req' if us is not None else 'n/a'):>12}")
    unexpected = [e for e in secure.errors + off.errors if "overscale" not in e]
    if unexpected:
        print(f"unexpected answers ({len(unexpected)}), first: {unexpected[:5]}")
    for label, ok in (("mutating p99", p(agg(secure, MUTATING), 0.99) <= GOALS["mutating p99"]),
                      ("reads p99", p(agg(secure, READS), 0.99) <= GOALS["reads p99"]),
                      ("auth cost", cost <= GOALS["auth cost"]), ("isolation", secure.cross_namespace_ok == 0),
                      ("quota", over == 0)):
        print(f"  {label:<14} {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
