"""``kubectl exec POD -- true`` round trip, next to ``docker exec`` and labkit's own exec, in one run.

The kubectl path is the whole of Kubernetes' exec: kubectl -> apiserver (``pods/exec`` upgraded to a
WebSocket, ``v5.channel.k8s.io``) -> kubelet -> CRI ``Exec`` (gRPC) -> the CRI server's streaming
server -> a process forked into the container's namespaces -> the exit code back as a Status.
Beside it: the Python client's ``stream()`` (no kubectl start-up), the CRI's ``ExecSync`` over
gRPC, the native runtime's ``exec_sync`` called in-process, kubectl's own start-up floor (``kubectl
get --raw /healthz``), and ``docker exec`` on a container of
the same image (when dockerd runs). Contenders take turns round by round, so a busy moment on a
shared machine hits all alike. Goal: kubectl exec p99 <= 150 ms.

    .venv/bin/python benchmarks/bench_exec.py [--runs 60] [--kubectl PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from labkit.cluster import Cluster
from labkit.runtime import host

GOAL_P99 = 0.150


def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def checked(argv: list[str]) -> Callable[[], None]:
    def go() -> None:
        out = subprocess.run(argv, capture_output=True)
        if out.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {out.stderr.decode(errors='replace')}")
    return go


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--kubectl", default=host.kubectl(), help="kubectl 1.30 or newer (default: the one on PATH)")
    args = ap.parse_args()
    load_before = load()
    docker_box = None
    with Cluster(nodes=1, store="sqlite", processes=True) as cluster:
        cluster.wait_nodes_ready()
        core = cluster.core()
        core.create_namespaced_pod("default", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "box"},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}})
        deadline = time.time() + 90
        while core.read_namespaced_pod("box", "default").status.phase != "Running":
            if time.time() > deadline:
                raise SystemExit("pod box did not start")
            time.sleep(0.2)
        cid = core.read_namespaced_pod("box", "default").status.container_statuses[0].container_id.split("://")[1]

        from kubernetes.stream import stream

        from labkit.node.cri.remote import RemoteRuntime

        cri = RemoteRuntime(str(cluster.cri_socket("node-1")))
        contenders: dict[str, Callable[[], None]] = {}
        notes: dict[str, str] = {}
        if args.kubectl:
            contenders["kubectl exec box -- true"] = checked([args.kubectl, "--kubeconfig", cluster.kubeconfig,
                                                              "exec", "box", "--", "true"])
            # kubectl's own floor: start, read the kubeconfig, one GET (exec also GETs the pod first)
            contenders["  floor: kubectl get --raw /healthz"] = checked(
                [args.kubectl, "--kubeconfig", cluster.kubeconfig, "get", "--raw", "/healthz"])
        else:
            notes["kubectl exec box -- true"] = "skipped: no kubectl"

        def py_stream() -> None:
            stream(core.connect_get_namespaced_pod_exec, "box", "default", command=["true"], stdout=True,
                   stderr=True, stdin=False, tty=False)
        contenders["Python client stream() exec"] = py_stream
        contenders["CRI ExecSync over gRPC"] = lambda: cri.exec_sync(cid, ["true"])
        if cluster.runtime_name == "native":
            import labkit.runtime as rt

            native = rt.get("native")
            contenders["native exec_sync, in-process"] = lambda: native.exec_sync(cid, ["true"])
        else:
            notes["native exec_sync, in-process"] = f"skipped: the cluster runs {cluster.runtime_name}"
        ok, _ = host.docker_reachable()
        if ok and shutil.which("docker"):
            from labkit.images import ImageStore

            store = ImageStore()
            ref = store.export_to_docker(store.ensure("busybox")).ref
            docker_box = subprocess.run(["docker", "run", "-d", "--rm", "--network", "none", "--label", "labkit=1",
                                         ref, "sleep", "3600"], capture_output=True, text=True,
                                        check=True).stdout.strip()
            contenders["docker exec CTR true"] = checked(["docker", "exec", docker_box, "true"])
        else:
            notes["docker exec CTR true"] = "skipped: no Docker daemon"
        try:
            results: dict[str, list[float]] = {k: [] for k in contenders}
            for fn in contenders.values():  # one warm-up each (imports, first connections)
                fn()
            for _ in range(args.runs):
                for name, fn in contenders.items():
                    t0 = time.perf_counter()
                    fn()
                    results[name].append(time.perf_counter() - t0)
        finally:
            if docker_box:
                subprocess.run(["docker", "rm", "-f", docker_box], capture_output=True)
            cri.close()
    print(f"exec round trip of `true`, {args.runs} rounds, runtime {cluster.runtime_name}; "
          f"load average {load_before} -> {load()}")
    width = max(len(k) for k in list(results) + list(notes))
    ref_key = "docker exec CTR true" if "docker exec CTR true" in results else None
    print(f"{'what':<{width}}  {'median':>9}  {'p99':>9}" + ("  x docker" if ref_key else ""))
    for name, v in results.items():
        med, p99 = statistics.median(v), pct(v, 99)
        ratio = f"  {med / statistics.median(results[ref_key]):7.2f}x" if ref_key else ""
        print(f"{name:<{width}}  {med * 1000:6.1f} ms  {p99 * 1000:6.1f} ms{ratio}")
    for name, why in notes.items():
        print(f"{name:<{width}}  {why}")
    key = "kubectl exec box -- true"
    if key in results:
        p99 = pct(results[key], 99)
        print(f"goal: kubectl exec p99 <= {GOAL_P99 * 1000:.0f} ms: {'yes' if p99 <= GOAL_P99 else 'NO'} "
              f"({p99 * 1000:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
