"""Pod startup latency on real containers: create -> Running, as a client watching the API sees it.

A whole cluster runs as separate processes (apiserver, scheduler, controller-manager, kubelets
with their CRI servers). Pods are created a few at a time; each pod's latency is the time from
just before its POST to the watch event that shows it Running — the Kubernetes pod startup SLO's
definition (p99 <= 5 s, for pods whose image is already on the node). Goal here: p99 <= 0.5 s.
Every pod counts: there is no warm-up pod and nothing is excluded; the first pod of each node is
also shown on its own line, since one-time node work would land on it.

Where the time goes comes from two clocks on this one host: the watcher's (scheduled, Running) and
the CRI server's trace (each RPC's start and end), joined by pod name and the ids the RPCs return:

    bind      create -> the watch shows spec.nodeName      (apiserver + scheduler + watch)
    pickup    scheduled -> RunPodSandbox begins           (kubelet watch, pod worker)
    sandbox   RunPodSandbox                               (runtime: pause/netns)
    network   sandbox ready -> CreateContainer begins     (CNI ADD, volumes, image check)
    create    CreateContainer
    start     StartContainer
    status    started -> the watch shows Running           (status PATCH + watch delivery)

    .venv/bin/python benchmarks/bench_pod_startup.py [--pods 60] [--rounds 3] [--runtimes default,runc,docker]
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time

from labkit.cluster import Cluster

SLO = 5.0
GOAL = 0.5
PHASES = ["bind", "pickup", "sandbox", "network", "create", "start", "status"]


def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))] if v else float("nan")


def _field(summary: str, name: str) -> str:
    m = re.search(rf"{name}='([^']*)'", summary or "")
    return m.group(1) if m else ""


def phases_from_trace(trace: list[dict], created: dict[str, float], scheduled: dict[str, float],
                      running: dict[str, float]) -> dict[str, dict[str, float]]:
    """Per pod: the seconds each phase took (see the module docstring), from one node's CRI trace."""
    sandbox_of: dict[str, str] = {}   # sandbox id -> pod
    container_of: dict[str, str] = {}  # container id -> pod
    marks: dict[str, dict[str, float]] = {}
    for e in trace:
        end = e["t"]
        begin = end - e["ms"] / 1000
        method = e["method"].rsplit("/", 1)[-1]
        if method == "RunPodSandbox":
            pod = _field(e["request"], "config.name")
            sid = _field(e.get("response", ""), "pod_sandbox_id")
            if pod in created and sid:
                sandbox_of[sid] = pod
                marks.setdefault(pod, {}).update(sb_begin=begin, sb_end=end)
        elif method == "CreateContainer":
            pod = sandbox_of.get(_field(e["request"], "pod_sandbox_id"), "")
            cid = _field(e.get("response", ""), "container_id")
            if pod and cid and "cc_begin" not in marks[pod]:
                container_of[cid] = pod
                marks[pod].update(cc_begin=begin, cc_end=end)
        elif method == "StartContainer":
            pod = container_of.get(_field(e["request"], "container_id"), "")
            if pod and "st_end" not in marks[pod]:
                marks[pod].update(st_begin=begin, st_end=end)
    out: dict[str, dict[str, float]] = {}
    for pod, m in marks.items():
        if pod not in running or pod not in scheduled or "st_end" not in m:
            continue
        out[pod] = {
            "bind": scheduled[pod] - created[pod],
            "pickup": m["sb_begin"] - scheduled[pod],
            "sandbox": m["sb_end"] - m["sb_begin"],
            "network": m["cc_begin"] - m["sb_end"],
            "create": m["cc_end"] - m["cc_begin"],
            "start": m["st_end"] - m["st_begin"],
            "status": running[pod] - m["st_end"],
        }
    return out


def measure(runtime: str | None, pods: int, parallel: int) -> dict:
    with Cluster(nodes=3, runtime=runtime, processes=True, store="sqlite") as c:
        core = c.core()
        created: dict[str, float] = {}
        scheduled: dict[str, float] = {}
        running: dict[str, float] = {}
        node_of: dict[str, str] = {}
        done = threading.Event()

        def follow() -> None:
            # the official client's watch, read as raw JSON lines: turning each event into model
            # objects costs the measuring process milliseconds that no component spends
            resp = core.list_namespaced_pod("default", label_selector="bench=startup", watch=True,
                                            timeout_seconds=300, _preload_content=False)
            try:
                buf = b""
                for chunk in resp.stream(65536, decode_content=False):
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        if not line.strip():
                            continue
                        now = time.time()
                        p = json.loads(line)["object"]
                        name = p["metadata"]["name"]
                        node = (p.get("spec") or {}).get("nodeName")
                        if node and name not in scheduled:
                            scheduled[name] = now
                            node_of[name] = node
                        if (p.get("status") or {}).get("phase") == "Running" and name not in running:
                            running[name] = now
                    if len(running) == pods:
                        break
            finally:
                resp.release_conn()
                done.set()

        t = threading.Thread(target=follow, daemon=True)
        t.start()
        time.sleep(0.5)
        for i in range(pods):
            while len(created) - len(running) >= parallel:
                time.sleep(0.002)
            name = f"start-{i:03d}"
            created[name] = time.time()
            core.create_namespaced_pod("default", {
                "metadata": {"name": name, "labels": {"bench": "startup"}},
                "spec": {"terminationGracePeriodSeconds": 0,
                         "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}})
        done.wait(300)
        lat = {n: running[n] - created[n] for n in created if n in running}
        first: dict[str, str] = {}
        for n in sorted(created, key=created.get):
            if n in node_of:
                first.setdefault(node_of[n], n)
        phases: dict[str, dict[str, float]] = {}
        for node in c.node_names():
            try:
                phases.update(phases_from_trace(c.cri_trace(node), created, scheduled, running))
            except OSError:
                pass
        node = core.list_node().items[0].status.node_info.container_runtime_version
        return {"runtime": c.runtime_name, "node_runtime": node, "lat": lat, "first": sorted(first.values()),
                "phases": phases}


def row(label: str, lat: list[float]) -> str:
    return (f"{label:<24}{len(lat):>6}{pct(lat, 50) * 1000:>9.0f}{pct(lat, 90) * 1000:>9.0f}"
            f"{pct(lat, 99) * 1000:>9.0f}{max(lat) * 1000:>9.0f}{pct(lat, 99) / SLO:>16.2f}x{pct(lat, 99) / GOAL:>19.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=60)
    ap.add_argument("--parallel", type=int, default=3, help="pods being started at once")
    ap.add_argument("--rounds", type=int, default=1, help="fresh clusters per runtime (p99 over all rounds too)")
    ap.add_argument("--runtimes", default="default,runc,docker")
    args = ap.parse_args()
    results: list[tuple[str, list[dict]]] = []
    for rt in args.runtimes.split(","):
        runs = []
        for i in range(args.rounds):
            try:
                r = measure(None if rt == "default" else rt, args.pods, args.parallel)
            except Exception as exc:  # noqa: BLE001 - a runtime this host lacks: say so, go on
                print(f"{rt}: skipped ({str(exc).splitlines()[0][:120]})")
                break
            runs.append(r)
            print(f"{r['runtime']} round {i + 1}: {len(r['lat'])} pods measured ({r['node_runtime']})", flush=True)
        if runs:
            results.append((runs[0]["runtime"], runs))
    print()
    print(f"{'runtime / pods':<24}{'pods':>6}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'p99 vs SLO 5 s':>17}{'p99 vs goal 0.5 s':>20}")
    for name, runs in results:
        every: list[float] = []
        firsts: list[float] = []
        for i, r in enumerate(runs):
            lat = list(r["lat"].values())
            every += lat
            firsts += [r["lat"][n] for n in r["first"] if n in r["lat"]]
            print(row(f"{name} round {i + 1}" if len(runs) > 1 else f"{name} all pods", lat))
        if len(runs) > 1:
            print(row(f"{name} all rounds", every))
        print(row(f"{name} 1st pod per node", firsts))
    print("\nwhere the time goes (ms per phase, all pods of all rounds; see the script's docstring):")
    print(f"{'runtime':<10}{'':>6}" + "".join(f"{p:>9}" for p in PHASES) + f"{'total':>9}")
    for name, runs in results:
        per = [ph for r in runs for ph in r["phases"].values()]
        if not per:
            print(f"{name:<10}  (no CRI trace: phases unknown)")
            continue
        for label, q in (("p50", 50), ("p99", 99)):
            cells = [pct([ph[p] for ph in per], q) * 1000 for p in PHASES]
            total = pct([sum(ph.values()) for ph in per], q) * 1000
            print(f"{name:<10}{label:>6}" + "".join(f"{x:>9.0f}" for x in cells) + f"{total:>9.0f}")
    print(f"\nanchors: Kubernetes pod startup SLO p99 <= {SLO:.0f} s; goal here p99 <= {GOAL} s "
          "(ratio < 1 means better than the anchor); 3 nodes, each component its own process, "
          f"{args.parallel} pods starting at a time; no pod excluded")


if __name__ == "__main__":
    main()
