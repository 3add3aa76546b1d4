"""The Node's plug points, side by side: what each protocol boundary costs.

* CNI: ADD+DEL of one pod with Debian's Go ``bridge`` plugin vs labkit's Python ``lk-bridge``;
* CRI: a ``ListPodSandbox`` answered in-process vs over the gRPC unix socket;
* device plugins: ``Allocate`` over gRPC.

Prints medians and ratios; asserts nothing. Needs root for the CNI part (skipped otherwise).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from labkit import paths  # noqa: E402


def median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def bench_cni(n: int = 10) -> None:
    from labkit.node.cni.plugin import CNINetworkPlugin
    from labkit.runtime.base import PodSandboxStatus, SandboxState

    if not (paths.is_root() and os.path.exists("/usr/lib/cni/bridge")):
        print("cni: skipped (needs root and containernetworking-plugins)")
        return
    results = {}
    for plugin in ("bridge", "lk-bridge"):
        node = CNINetworkPlugin(f"bench{uuid.uuid4().hex[:4]}", "10.244.200.0/24", plugin=plugin,
                                fabric=f"labkit-fabric-b{uuid.uuid4().hex[:5]}")
        try:
            def one(node=node):
                sb = PodSandboxStatus(uuid.uuid4().hex, "bench", "default", SandboxState.READY, 0.0)
                node.setup_pod({}, sb)
                node.teardown_pod({}, sb)
            results[plugin] = median_ms(one, n)
        finally:
            node.close()
    print(f"cni ADD+DEL (loopback + plugin + portmap), median of {n}:")
    for k, v in results.items():
        print(f"   {k:10} {v:7.1f} ms")
    print(f"   Python plugin / Go plugin: {results['lk-bridge'] / results['bridge']:.1f}x")


def bench_cri(n: int = 200) -> None:
    from support.node import MemoryRuntime

    from labkit.node.cri import RemoteRuntime, serve
    from labkit.runtime.base import PodSandboxConfig

    backend = MemoryRuntime()
    for i in range(20):
        backend.run_pod_sandbox(PodSandboxConfig(name=f"p{i}"))
    with tempfile.TemporaryDirectory() as d:
        server = serve(backend, Path(d) / "cri.sock")
        remote = RemoteRuntime(server.endpoint)
        try:
            local_ms = median_ms(backend.list_pod_sandboxes, n)
            grpc_ms = median_ms(remote.list_pod_sandboxes, n)
            ver_ms = median_ms(remote.version, n)
        finally:
            remote.close()
            server.stop()
    print(f"cri ListPodSandbox (20 pods), median of {n}:")
    print(f"   in-process {local_ms * 1000:8.1f} us")
    print(f"   over gRPC  {grpc_ms * 1000:8.1f} us   ({grpc_ms / local_ms:.0f}x; Version alone {ver_ms * 1000:.0f} us)")


def bench_device_allocate(n: int = 200) -> None:
    from labkit.node.deviceplugin import DeviceManager, SampleDevicePlugin

    with tempfile.TemporaryDirectory() as d:
        os.environ["LABKIT_STATE"] = str(Path(d) / "state")
        mgr = DeviceManager(Path(d) / "dp")
        plugin = SampleDevicePlugin(mgr.dir, count=1, real=False).start()
        try:
            mgr.wait_for("nvidia.com/gpu", 1)
            pod = {"metadata": {"uid": "u"}}
            ctr = {"name": "c", "resources": {"limits": {"nvidia.com/gpu": "1"}}}

            def one():
                mgr.allocate(pod, ctr)
                mgr.release_pod(pod)
            ms = median_ms(one, n)
        finally:
            plugin.stop()
            mgr.close()
    print(f"device plugin Allocate over gRPC, median of {n}: {ms * 1000:.0f} us")


if __name__ == "__main__":
    bench_cri()
    bench_device_allocate()
    bench_cni()
