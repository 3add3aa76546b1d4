"""Lab 23's exercises: ask for devices, see them handed out one to a pod, and write a plugin's
Allocate answer for a device type of your own.

The first two run pods on a cluster whose node-2 has two (simulated) GPUs and read what the
containers saw. The third loads the learner's ``allocate`` function from the lab folder, serves it
through the real ``v1beta1.DevicePlugin`` gRPC service, registers it with a kubelet's device
manager, and lets the manager allocate devices to containers.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import shutil
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

from labkit.practice import Exercise, Target, Verdict

GPU_CLUSTER = {"nodes": 2, "node_gpus": {"node-2": 2}}
GPU_ID = re.compile(r"\b(LK-GPU-\d+|GPU-[0-9a-f-]{8,})\b")
SHOW = "echo NVIDIA_VISIBLE_DEVICES=$NVIDIA_VISIBLE_DEVICES"


def _pod(t: Target, name: str) -> Any:
    matches = [p for p in t.core.list_namespaced_pod(t.namespace).items if p.metadata.name == name]
    return matches[0] if matches else None


def _gpus_asked(pod: Any) -> int:
    total = 0
    for c in pod.spec.containers:
        limits = (c.resources.limits if c.resources else None) or {}
        total += int(limits.get("nvidia.com/gpu", 0))
    return total


def _seen_gpus(t: Target, pod: Any) -> list[str]:
    """The GPU ids the container printed (its NVIDIA_VISIBLE_DEVICES, set by the plugin's Allocate)."""
    try:
        log = t.core.read_namespaced_pod_log(pod.metadata.name, t.namespace)
    except Exception:
        return []
    return [m for line in log.splitlines() if "NVIDIA_VISIBLE_DEVICES=" in line for m in GPU_ID.findall(line)]


def _gpu_pod(name: str, script: str, restart: str = "Never") -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": restart, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "train", "image": "busybox", "command": ["sh", "-c", script],
                                     "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}


# --- 23.1: a pod that gets a GPU ------------------------------------------------------------
def _verify_one_gpu(t: Target) -> Verdict:
    pod = _pod(t, "train")
    if pod is None:
        return Verdict.not_yet(f"there is no pod 'train' in {t.namespace!r} yet")
    if _gpus_asked(pod) != 1:
        return Verdict.not_yet("train must ask for exactly one GPU: resources.limits {\"nvidia.com/gpu\": 1}")
    if pod.status.phase != "Succeeded":
        return Verdict.not_yet(f"train is {pod.status.phase} on {pod.spec.node_name or 'no node'}; it should run to "
                               "completion (restartPolicy: Never)")
    seen = _seen_gpus(t, pod)
    if len(seen) != 1:
        return Verdict.not_yet(f"train's log should show one GPU id in a line NVIDIA_VISIBLE_DEVICES=...; found {seen}")
    return Verdict.ok(f"train ran on {pod.spec.node_name} with GPU {seen[0]}")


def _solve_one_gpu(t: Target) -> None:
    t.core.create_namespaced_pod(t.namespace, _gpu_pod("train", SHOW))


# --- 23.2: two pods, two different GPUs ---------------------------------------------------------
def _verify_two_pods(t: Target) -> Verdict:
    seen = {}
    for name in ("train-a", "train-b"):
        pod = _pod(t, name)
        if pod is None:
            return Verdict.not_yet(f"there is no pod {name!r} in {t.namespace!r} yet")
        if _gpus_asked(pod) != 1:
            return Verdict.not_yet(f"{name} must ask for exactly one nvidia.com/gpu")
        if pod.status.phase != "Running":
            return Verdict.not_yet(f"{name} is {pod.status.phase}; both must be Running at the same time "
                                   "(keep them alive: sleep 3600 after printing)")
        ids = _seen_gpus(t, pod)
        if len(ids) != 1:
            return Verdict.not_yet(f"{name}'s log should show one GPU id in NVIDIA_VISIBLE_DEVICES=...; found {ids}")
        seen[name] = (ids[0], pod.spec.node_name)
    (a, node_a), (b, node_b) = seen["train-a"], seen["train-b"]
    if node_a == node_b and a == b:
        return Verdict.not_yet(f"both pods see {a} on {node_a}: that would be a bug in the device manager")
    return Verdict.ok(f"train-a has {a}, train-b has {b}: a device belongs to one container at a time")


def _solve_two_pods(t: Target) -> None:
    for name in ("train-a", "train-b"):
        t.core.create_namespaced_pod(t.namespace, _gpu_pod(name, f"{SHOW}; sleep 3600", "Always"))


# --- 23.3: the Allocate answer for a second device type -------------------------------------------
FPGA = "example.com/fpga"
FPGAS = [f"FPGA-{i}" for i in range(4)]


def _expected(ids: list[str]) -> tuple[str, set[tuple[str, str]]]:
    return ",".join(ids), {(f"/dev/lkfpga{i.split('-')[1]}", f"/dev/fpga{i.split('-')[1]}") for i in ids}


def _shown(path: Path) -> str:
    """A path as the learner knows it (``~/labkit-exercises/...``), not the build machine's home."""
    home = str(Path.home())
    return "~" + str(path)[len(home):] if str(path).startswith(home + "/") else str(path)


def _load_allocate(t: Target) -> tuple[Any, str]:
    path = t.workdir / "fpga.py"
    if not path.exists():
        return None, f"there is no {_shown(path)} yet: write a function allocate(device_ids) there"
    spec = importlib.util.spec_from_file_location(f"learner_fpga_{t.owner.replace('-', '_')}", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    except Exception as err:
        return None, f"{_shown(path)} does not import: {type(err).__name__}: {err}"
    fn = getattr(module, "allocate", None)
    if not callable(fn):
        return None, f"{_shown(path)} has no function allocate(device_ids)"
    return fn, ""


def _servicer(allocate: Any) -> Any:
    """A DevicePlugin that advertises four FPGAs and answers Allocate with the learner's function."""
    import grpc

    from labkit.node.deviceplugin import api_pb2 as pb
    from labkit.node.deviceplugin import api_pb2_grpc as pb_grpc

    class LearnerFPGAPlugin(pb_grpc.DevicePluginServicer):
        def __init__(self) -> None:
            self.stopped = threading.Event()

        def GetDevicePluginOptions(self, request, context):  # noqa: N802, ANN001, ANN201
            return pb.DevicePluginOptions()

        def ListAndWatch(self, request, context):  # noqa: N802, ANN001, ANN201
            yield pb.ListAndWatchResponse(devices=[pb.Device(ID=i, health="Healthy") for i in FPGAS])
            while not self.stopped.wait(0.2) and context.is_active():
                pass

        def Allocate(self, request, context):  # noqa: N802, ANN001, ANN201
            resp = pb.AllocateResponse()
            for creq in request.container_requests:
                try:
                    answer = allocate(list(creq.devicesIDs))
                    resp.container_responses.append(pb.ContainerAllocateResponse(
                        envs={str(k): str(v) for k, v in (answer.get("envs") or {}).items()},
                        devices=[pb.DeviceSpec(host_path=d["host_path"], container_path=d["container_path"],
                                               permissions=d.get("permissions", "rw"))
                                 for d in answer.get("devices") or []],
                        mounts=[pb.Mount(host_path=m["host_path"], container_path=m["container_path"],
                                         read_only=bool(m.get("read_only", False)))
                                for m in answer.get("mounts") or []]))
                except Exception as err:
                    context.abort(grpc.StatusCode.INTERNAL, f"allocate({list(creq.devicesIDs)}) failed or gave an "
                                  f"answer without a needed key: {type(err).__name__}: {err}")
            return resp

    return LearnerFPGAPlugin()


@contextlib.contextmanager
def _kubelet_with_plugin(t: Target, allocate: Any) -> Iterator[Any]:
    """A kubelet's device manager and the learner's plugin, registered with it over gRPC."""
    import grpc

    from labkit import paths
    from labkit.node.deviceplugin import DeviceManager
    from labkit.node.deviceplugin import api_pb2 as pb
    from labkit.node.deviceplugin import api_pb2_grpc as pb_grpc
    from labkit.node.deviceplugin.manager import API_VERSION

    folder = paths.state_dir() / "devices" / f"ex23-{t.owner}"
    shutil.rmtree(folder, ignore_errors=True)
    manager = DeviceManager(folder)
    plugin = _servicer(allocate)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    try:
        pb_grpc.add_DevicePluginServicer_to_server(plugin, server)
        server.add_insecure_port(f"unix:{folder / 'fpga.sock'}")
        server.start()
        with grpc.insecure_channel(f"unix:{manager.socket}") as ch:
            pb_grpc.RegistrationStub(ch).Register(pb.RegisterRequest(
                version=API_VERSION, endpoint="fpga.sock", resource_name=FPGA, options=pb.DevicePluginOptions()),
                timeout=10)
        manager.wait_for(FPGA, len(FPGAS), timeout=10)
        yield manager
    finally:
        plugin.stopped.set()
        server.stop(0.2).wait()
        manager.close()
        shutil.rmtree(folder, ignore_errors=True)


def _verify_fpga(t: Target) -> Verdict:
    from labkit.node.kubelet.plugins import PluginError

    allocate, problem = _load_allocate(t)
    if allocate is None:
        return Verdict.not_yet(problem)
    with _kubelet_with_plugin(t, allocate) as manager:
        for pod, n in (("pod-a", 2), ("pod-b", 1)):
            container = {"name": "main", "resources": {"limits": {FPGA: str(n)}}}
            try:
                got = manager.allocate({"metadata": {"uid": pod, "name": pod}}, container)
            except PluginError as err:
                return Verdict.not_yet(f"the kubelet's Allocate call failed: {err}")
            ids = manager.allocated()[pod][FPGA]
            env, devices = _expected(ids)
            if got.env.get("FPGA_VISIBLE_DEVICES") != env:
                return Verdict.not_yet(f"for devices {ids} the container's env has FPGA_VISIBLE_DEVICES="
                                       f"{got.env.get('FPGA_VISIBLE_DEVICES')!r}; it should be {env!r}")
            have = {(d.host_path, d.container_path) for d in got.devices}
            if have != devices:
                return Verdict.not_yet(f"for devices {ids} the answer maps {sorted(have)}; each FPGA-n should map "
                                       f"its host node /dev/lkfpga<n> to /dev/fpga<n>: {sorted(devices)}")
            if any("r" not in d.permissions or "w" not in d.permissions for d in got.devices):
                return Verdict.not_yet("the containers must be able to read and write the devices (permissions rw)")
    return Verdict.ok("the kubelet allocated FPGA-0,FPGA-1 to one container and FPGA-2 to another; your answers "
                      "named exactly those devices")


FPGA_SOLUTION = '''def allocate(device_ids):
    """What a container needs to use these FPGAs: an env variable and one device node each."""
    numbers = [i.split("-")[1] for i in device_ids]
    return {
        "envs": {"FPGA_VISIBLE_DEVICES": ",".join(device_ids)},
        "devices": [{"host_path": f"/dev/lkfpga{n}", "container_path": f"/dev/fpga{n}", "permissions": "rw"}
                    for n in numbers],
    }
'''


def _solve_fpga(t: Target) -> None:
    (t.workdir / "fpga.py").write_text(FPGA_SOLUTION)


EXERCISES = [
    Exercise(
        id="23.1",
        title="A pod that gets a GPU",
        statement=f"""On a cluster with GPUs (the lab's `Cluster(nodes=2, gpus=2)`, or
`Cluster(nodes=2, node_gpus={{"node-2": 2}})`), run a pod **train** (busybox, `restartPolicy: Never`)
that asks for **one** `nvidia.com/gpu` and prints `{SHOW}`. The check wants it Succeeded, and reads
in its log which GPU the device plugin's Allocate gave it.""",
        verify=_verify_one_gpu,
        solution=_solve_one_gpu,
        solution_text=f"""```yaml
apiVersion: v1
kind: Pod
metadata: {{name: train}}
spec:
  restartPolicy: Never
  containers:
  - name: train
    image: busybox
    command: [sh, -c, "{SHOW}"]
    resources: {{limits: {{nvidia.com/gpu: 1}}}}
```""",
        concept="extended resources",
        difficulty="easy",
        cluster=GPU_CLUSTER,
        needs=("root",),  # without root the simulated runtime runs no command, so there is no log to read
        timeout=30,
    ),
    Exercise(
        id="23.2",
        title="Two pods, two GPUs",
        statement=f"""Run two pods **train-a** and **train-b** at the same time, each asking for one
`nvidia.com/gpu`, each printing `{SHOW}` and then staying up (`sleep 3600`). The check reads both logs:
a device is given to one container at a time, so they must name different GPUs.""",
        verify=_verify_two_pods,
        solution=_solve_two_pods,
        solution_text=f"""Two pods like 23.1's `train`, named train-a and train-b, with the command
`{SHOW}; sleep 3600`. On a node with two GPUs both run; a third would stay Pending.""",
        concept="device allocation is exclusive",
        difficulty="medium",
        cluster=GPU_CLUSTER,
        needs=("root",),  # without root the simulated runtime runs no command, so there is no log to read
        timeout=30,
    ),
    Exercise(
        id="23.3",
        title="The Allocate answer for a second device type",
        statement=f"""A plugin for **{FPGA}** advertises four devices, `FPGA-0` … `FPGA-3`; `FPGA-n` is the
host's device node `/dev/lkfpga<n>`. Write its Allocate answer: a file `fpga.py` in your lab folder
(`~/labkit-exercises/23/`) with a function `allocate(device_ids)` that returns a dict with `envs`
(`FPGA_VISIBLE_DEVICES`: the ids, comma-separated) and `devices` (each `host_path` `/dev/lkfpga<n>`
shown to the container at `container_path` `/dev/fpga<n>`, `permissions` `rw`). The check serves your
function through the real device-plugin gRPC API, registers it with a kubelet's device manager, and
lets the manager allocate two FPGAs to one container and one to another.""",
        verify=_verify_fpga,
        solution=_solve_fpga,
        solution_text=f"""```python
{FPGA_SOLUTION}```""",
        concept="the device plugin API: Allocate",
        difficulty="hard",
        timeout=15,
    ),
]
