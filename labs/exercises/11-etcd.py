"""Lab 11's exercises: a real etcd, its leases, and its quorum.

The learner starts etcd with :class:`labkit.controlplane.store.etcd_server.EtcdCluster` on a data
directory in the lab's exercise folder (``~/labkit-exercises/11``). That directory's
``labkit-members.json`` names the members' ports; each check talks to those members over etcd's
own v3 API (its JSON gateway), one member at a time where it matters.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
from pathlib import Path
from typing import Any

from labkit.practice import Exercise, Target, Verdict

NEEDS = ("etcd",)
_STARTED: dict[str, Any] = {}  # data dir -> EtcdCluster the reference solutions started (cleanup stops them)


def _members(folder: Path) -> list[dict[str, Any]] | None:
    try:
        return json.loads((folder / "labkit-members.json").read_text())
    except (OSError, ValueError):
        return None


def _up(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _call(port: int, path: str, body: dict[str, Any], timeout: float = 3.0) -> dict[str, Any]:
    import requests

    r = requests.post(f"http://127.0.0.1:{port}{path}", json=body, timeout=timeout)
    r.raise_for_status()
    return r.json()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _get(port: int, key: str, revision: int = 0) -> tuple[dict[str, Any] | None, int]:
    """(the key's kv or None, the store's revision) by a linearizable read through member ``port``."""
    out = _call(port, "/v3/kv/range", {"key": _b64(key), "revision": revision})
    kvs = out.get("kvs") or []
    return (kvs[0] if kvs else None), int(out["header"]["revision"])


def _live(folder: Path, how: str) -> tuple[list[dict[str, Any]], list[int]] | str:
    """(members, ports of the running ones), or a hint when there is no etcd there."""
    members = _members(folder)
    if not members:
        return f"no etcd has been started in {folder} yet: {how}"
    ports = [m["client_port"] for m in members if _up(m["client_port"])]
    if not ports:
        return f"the etcd in {folder} is not running: start it again with EtcdCluster(data_dir_path=...).start()"
    return members, ports


def _start(folder: Path, members: int = 1) -> Any:
    from labkit.controlplane.store.etcd_server import EtcdCluster

    if str(folder) not in _STARTED:
        cluster = EtcdCluster(members=members, data_dir_path=folder)
        cluster.start()
        _STARTED[str(folder)] = cluster
    return _STARTED[str(folder)]


def _stop(folder: Path) -> None:
    cluster = _STARTED.pop(str(folder), None)
    if cluster is not None:
        cluster.stop()
    shutil.rmtree(folder, ignore_errors=True)


# ---- 11.1: an API object, found in etcd -----------------------------------------------------------
def _verify_in_etcd(t: Target) -> Verdict:
    folder = t.workdir / "single"
    live = _live(folder, "EtcdCluster(members=1, data_dir_path=...).start()")
    if isinstance(live, str):
        return Verdict.not_yet(live)
    key = "/registry/configmaps/default/color"
    kv, rev = _get(live[1][0], key)
    if kv is None:
        return Verdict.not_yet(f"etcd (revision {rev}) has no key {key}: create the ConfigMap 'color' through an "
                               "apiserver that uses this etcd")
    obj = json.loads(base64.b64decode(kv["value"]))
    if (obj.get("data") or {}).get("color") != "green":
        return Verdict.not_yet(f"{key} holds data {obj.get('data')}; it must have color: green")
    return Verdict.ok(f"etcd holds {key} (create_revision {kv['create_revision']}, mod_revision "
                      f"{kv['mod_revision']}, the ConfigMap's resourceVersion) as JSON with color=green")


def _solve_in_etcd(t: Target) -> None:
    from kubernetes import client

    from labkit.controlplane.apiserver import APIServer

    etcd = _start(t.workdir / "single")
    with APIServer(etcd.url) as api:
        cfg = client.Configuration()
        cfg.host = api.url
        client.CoreV1Api(client.ApiClient(cfg)).create_namespaced_config_map(
            "default", {"metadata": {"name": "color"}, "data": {"color": "green"}})


# ---- 11.2: a key that expires with its lease -----------------------------------------------------
def _verify_lease(t: Target) -> Verdict:
    folder = t.workdir / "single"
    live = _live(folder, "EtcdCluster(members=1, data_dir_path=...).start()")
    if isinstance(live, str):
        return Verdict.not_yet(live)
    port, key = live[1][0], "/ex/session"
    now, rev = _get(port, key)
    if now is not None:
        lease = int(now.get("lease", 0) or 0)
        if not lease:
            return Verdict.not_yet(f"{key} exists with no lease: put it with --lease (a lease of 5 s or less)")
        ttl = _call(port, "/v3/lease/timetolive", {"ID": lease}).get("TTL", "?")
        return Verdict.not_yet(f"{key} is still there; its lease {lease:x} has {ttl} s to live. Wait, and check again")
    leased = None
    for r in range(rev, 0, -1):  # newest first: the last version the key had before it went
        try:
            kv, _ = _get(port, key, r)
        except Exception:  # noqa: BLE001 - a compacted revision: no older history to read
            break
        if kv is not None:
            leased = kv
            break
    if leased is None:
        return Verdict.not_yet(f"etcd's history (revisions 1-{rev}) never had {key}: grant a lease, and put the "
                               "key with it")
    lease = int(leased.get("lease", 0) or 0)
    if not lease:
        return Verdict.not_yet(f"{key} had no lease and was deleted by hand; put it with a lease and let it expire")
    left = int(_call(port, "/v3/lease/timetolive", {"ID": lease}).get("TTL", -1))
    if left > 0:
        return Verdict.not_yet(f"{key} is gone, but its lease {lease:x} still lives ({left} s): it was deleted by "
                               "hand; let the lease take it")
    return Verdict.ok(f"{key} (last written at revision {leased['mod_revision']} under lease {lease:x}) is gone, "
                      "and so is the lease: etcd deleted the key when the lease expired")


def _solve_lease(t: Target) -> None:
    port = _start(t.workdir / "single").members[0].client_port
    lease = _call(port, "/v3/lease/grant", {"TTL": 2})["ID"]
    _call(port, "/v3/kv/put", {"key": _b64("/ex/session"), "value": _b64("alive"), "lease": lease})


# ---- 11.3: keep writing with one member of three down ----------------------------------------------
def _verify_quorum(t: Target) -> Verdict:
    folder = t.workdir / "trio"
    live = _live(folder, "EtcdCluster(members=3, data_dir_path=...).start()")
    if isinstance(live, str):
        return Verdict.not_yet(live)
    members, ports = live
    if len(members) != 3:
        return Verdict.not_yet(f"the etcd in {folder} has {len(members)} member(s); start one with three")
    down = [m["name"] for m in members if m["client_port"] not in ports]
    if len(down) != 1:
        return Verdict.not_yet(f"{len(down)} member(s) are down ({down or 'none'}); stop exactly one "
                               "(cluster.kill(1)) and leave the other two running")
    key = "/ex/during-outage"
    for port in ports:  # a linearizable read through each survivor: it needs the quorum
        try:
            kv, rev = _get(port, key)
        except Exception as exc:  # noqa: BLE001 - a member without quorum times out
            return Verdict.not_yet(f"the member on port {port} cannot serve a quorum read ({type(exc).__name__})")
        if kv is None:
            return Verdict.not_yet(f"with {down[0]} down, the member on port {port} (revision {rev}) has no {key}; "
                                   "write it now, while the member is down")
    return Verdict.ok(f"{down[0]} is down; both survivors serve {key} in quorum reads: 2 of 3 is a majority")


def _solve_quorum(t: Target) -> None:
    import time

    cluster = _start(t.workdir / "trio", members=3)
    cluster.kill(1)
    body = {"key": _b64("/ex/during-outage"), "value": _b64("written by 2 of 3")}
    deadline = time.monotonic() + 20
    while True:  # if the killed member led, the other two elect a new leader first (503 until then)
        try:
            _call(cluster.members[0].client_port, "/v3/kv/put", body, timeout=5)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


STARTER = """```python
from pathlib import Path
from labkit.controlplane.store.etcd_server import EtcdCluster, etcdctl

folder = Path.home() / "labkit-exercises" / "11"
%s
```"""

EXERCISES = [
    Exercise(
        id="11.1",
        title="Find an API object in etcd",
        statement="""Start a one-member etcd on the data directory `single` (below) and an apiserver that uses it
(`APIServer(etcd.url)`), and create a ConfigMap `color` in `default` with `color: green` through
the API. The check reads the key the apiserver wrote straight from etcd.

""" + STARTER % "etcd = EtcdCluster(members=1, data_dir_path=folder / 'single'); etcd.start()",
        verify=_verify_in_etcd,
        solution=_solve_in_etcd,
        solution_text="""```python
from labkit.controlplane.apiserver import APIServer
from kubernetes import client
with APIServer(etcd.url) as api:
    cfg = client.Configuration(); cfg.host = api.url
    client.CoreV1Api(client.ApiClient(cfg)).create_namespaced_config_map(
        "default", {"metadata": {"name": "color"}, "data": {"color": "green"}})
print(etcdctl(etcd, "get", "/registry/configmaps/default/color"))
```""",
        cleanup=lambda t: _stop(t.workdir / "single"),
        concept="the apiserver's keys in etcd",
        difficulty="easy",
        needs=NEEDS,
    ),
    Exercise(
        id="11.2",
        title="A key that expires",
        statement="""In the same etcd (`single`), grant a lease with a TTL of a few seconds, put the key
`/ex/session` with that lease, and watch it disappear (`etcdctl watch /ex/session`). This is how
Kubernetes leader election and node heartbeats expire. The check reads etcd's history for the key:
it must have been written under a lease, and now both the key and the lease must be gone.""",
        verify=_verify_lease,
        solution=_solve_lease,
        solution_text="""```bash
etcdctl --endpoints $EP lease grant 3                 # lease 694d... granted with TTL(3s)
etcdctl --endpoints $EP put /ex/session alive --lease=694d...
etcdctl --endpoints $EP watch /ex/session             # DELETE /ex/session, about 3 s later
```""",
        cleanup=lambda t: _stop(t.workdir / "single"),
        concept="leases",
        difficulty="medium",
        needs=NEEDS + ("etcdctl",),
        timeout=30.0,
    ),
    Exercise(
        id="11.3",
        title="Lose a member, keep writing",
        statement="""Start a **three**-member etcd on the data directory `trio`, stop exactly one member
(`cluster.kill(1)`), and while it is down write the key `/ex/during-outage`. Leave it that way.
The check finds which member is down, and reads the key through each survivor with a
linearizable read, which only a majority can answer.

""" + STARTER % "cluster = EtcdCluster(members=3, data_dir_path=folder / 'trio'); cluster.start()",
        verify=_verify_quorum,
        solution=_solve_quorum,
        solution_text="""```python
cluster.kill(1)
etcdctl(cluster, "put", "/ex/during-outage", "written by 2 of 3")   # etcdctl fails over to a live member
```""",
        cleanup=lambda t: _stop(t.workdir / "trio"),
        concept="Raft quorum",
        difficulty="hard",
        needs=NEEDS,
    ),
]
