"""Lab 20's exercises: be the kubelet, with nothing but CRI calls.

The learner talks to a CRI server (``RemoteRuntime`` or ``crictl`` on its socket). The checks
ask the backend behind it directly, the way ``crictl`` on a node sees what every kubelet and tool
started, and read the kernel (``/proc``, cgroup files) for what the runtime claims.
"""

from __future__ import annotations

import os
from pathlib import Path

from labkit.practice import Exercise, Target, Verdict
from labkit.runtime.base import ContainerState

MEMORY_LIMIT = 64 * 1024 * 1024
NAMESPACE = "lab20"


def _backend():  # noqa: ANN202 - the Runtime behind the lab's CRI socket
    import labkit.runtime

    return labkit.runtime.default()


def _sandboxes(rt, name: str) -> list:  # noqa: ANN001
    from labkit.runtime.base import SandboxState

    return [s for s in rt.list_pod_sandboxes() if s.name == name and s.state == SandboxState.READY]


def _containers(rt, sandbox_id: str) -> dict:  # noqa: ANN001
    """Newest container of each name in the sandbox."""
    out: dict = {}
    for c in sorted(rt.list_containers(sandbox_id), key=lambda c: c.created_at):
        out[c.name] = c
    return out


def _alive(pid: int | None) -> bool:
    return bool(pid) and Path(f"/proc/{pid}").exists()


def _start_pod(t: Target, base: str, containers: list[str], exercise: str) -> None:
    from labkit.runtime.base import ContainerConfig, PodSandboxConfig

    rt = _backend()
    rt.pull_image("busybox")
    cfg = PodSandboxConfig(name=t.name(base), namespace=NAMESPACE, uid=f"{t.name(base)}-uid",
                           labels={"exercise": exercise, "owner": t.owner})
    sid = rt.run_pod_sandbox(cfg)
    for name in containers:
        cid = rt.create_container(sid, ContainerConfig(name=name, image="busybox", command=["sleep", "3600"],
                                                       labels={"exercise": exercise}), cfg)
        rt.start_container(cid)


def _remove_pods(t: Target, *bases: str) -> None:
    from labkit.runtime.podteardown import remove_pod

    rt = _backend()
    names = {t.name(b) for b in bases}
    for s in rt.list_pod_sandboxes():
        if s.name in names:
            remove_pod(rt, s.id, [c.id for c in rt.list_containers(s.id)])


# ---------------------------------------------------------------------------- 20.1 a pod by hand
def _verify_pod(t: Target) -> Verdict:
    rt = _backend()
    name = t.name("web")
    boxes = _sandboxes(rt, name)
    if not boxes:
        return Verdict.not_yet(f"the runtime has no ready pod sandbox named {name!r}: RunPodSandbox first")
    for box in boxes:
        running = [c for c in _containers(rt, box.id).values() if c.state == ContainerState.RUNNING]
        for c in running:
            if _alive(c.pid):
                return Verdict.ok(f"sandbox {box.id[:13]} ({name}) runs container {c.name} {c.id[:13]},"
                                  f" host pid {c.pid}")
    return Verdict.not_yet(f"sandbox {name!r} is ready but no container runs in it: CreateContainer in that"
                           " sandbox, then StartContainer (with a command that keeps running)")


def _solve_pod(t: Target) -> None:
    _start_pod(t, "web", ["hello"], "20.1")


def _cleanup_pod(t: Target) -> None:
    _remove_pods(t, "web")


# ---------------------------------------------------------------------------- 20.2 find and stop
def _verify_stopped(t: Target) -> Verdict:
    rt = _backend()
    name = t.name("busy")
    boxes = _sandboxes(rt, name)
    if not boxes:
        return Verdict.not_yet(f"there is no ready pod sandbox {name!r} any more: stop one container, not the pod")
    cs = _containers(rt, boxes[0].id)
    worker, sidecar = cs.get("worker"), cs.get("sidecar")
    if worker is None or sidecar is None:
        return Verdict.not_yet(f"sandbox {name!r} lacks its containers (worker: {worker is not None}, sidecar:"
                               f" {sidecar is not None}): StopContainer leaves a container in place, do not remove")
    if sidecar.state != ContainerState.RUNNING:
        return Verdict.not_yet("the sidecar is stopped too: stop only the worker")
    if worker.state == ContainerState.RUNNING:
        return Verdict.not_yet(f"the worker still runs (container {worker.id[:13]}, host pid {worker.pid})")
    if worker.state != ContainerState.EXITED:
        return Verdict.not_yet(f"the worker is {worker.state}, not exited")
    return Verdict.ok(f"worker {worker.id[:13]} exited (code {worker.exit_code}); the sidecar and the sandbox"
                      " still run")


def _solve_stop(t: Target) -> None:
    rt = _backend()
    box = _sandboxes(rt, t.name("busy"))[0]
    rt.stop_container(_containers(rt, box.id)["worker"].id, timeout=1)


# ---------------------------------------------------------------------------- 20.3 a limit through CRI
def _memory_limit(pid: int) -> int | None:
    """The memory limit of the cgroup ``pid`` is in, from the kernel's own files (v1 or v2)."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            f = Path("/sys/fs/cgroup/memory") / path.lstrip("/") / "memory.limit_in_bytes"
        elif controllers == "":
            f = Path("/sys/fs/cgroup") / path.lstrip("/") / "memory.max"
            if not f.exists():
                continue
        else:
            continue
        try:
            text = f.read_text().strip()
        except OSError:
            continue
        return None if text == "max" else int(text)
    return None


def _verify_limit(t: Target) -> Verdict:
    rt = _backend()
    name = t.name("small")
    boxes = _sandboxes(rt, name)
    if not boxes:
        return Verdict.not_yet(f"the runtime has no ready pod sandbox named {name!r}")
    running = [c for c in _containers(rt, boxes[0].id).values() if c.state == ContainerState.RUNNING and _alive(c.pid)]
    if not running:
        return Verdict.not_yet(f"no container runs in sandbox {name!r}")
    seen = []
    for c in running:
        limit = _memory_limit(c.pid)
        if limit == MEMORY_LIMIT:
            return Verdict.ok(f"the kernel limits container {c.name} (host pid {c.pid}) to {limit // 2**20} MiB:"
                              " the CRI request became an OCI resources entry and then a cgroup file")
        seen.append(f"{c.name}: {'no limit' if limit is None or limit > 2**50 else f'{limit} bytes'}")
    if os.geteuid() != 0 or rt.name == "simulated":
        return Verdict.not_yet(f"the {rt.name} backend sets no cgroup limits on this host ({'; '.join(seen)})")
    return Verdict.not_yet(f"the kernel's limit for the containers in {name!r}: {'; '.join(seen)};"
                           f" it should be {MEMORY_LIMIT} bytes (64 MiB)")


def _solve_limit(t: Target) -> None:
    from labkit.oci.resources import Resources
    from labkit.runtime.base import ContainerConfig, PodSandboxConfig

    rt = _backend()
    rt.pull_image("busybox")
    cfg = PodSandboxConfig(name=t.name("small"), namespace=NAMESPACE, uid=f"{t.name('small')}-uid",
                           labels={"exercise": "20.3"})
    sid = rt.run_pod_sandbox(cfg)
    cid = rt.create_container(sid, ContainerConfig(name="app", image="busybox", command=["sleep", "3600"],
                                                   resources=Resources(memory_bytes=MEMORY_LIMIT)), cfg)
    rt.start_container(cid)


EXERCISES = [
    Exercise(
        id="20.1",
        title="Run a pod by hand, over CRI",
        statement="""Be the kubelet: with CRI calls only (`RemoteRuntime` on the lab's socket, or `crictl`),
run a **pod sandbox named `ex-web`** (in a class, your own prefix instead of `ex`) and, inside it, a
container from `busybox` that keeps running (`sleep 3600`). Then find it with `crictl pods` and
`crictl ps`: which ids do you need for which call?""",
        verify=_verify_pod,
        solution=_solve_pod,
        solution_text="""```python
sb = PodSandboxConfig(name="ex-web", namespace="lab20", uid="ex-web-1")
cri.pull_image("busybox")
pod_id = cri.run_pod_sandbox(sb)
cid = cri.create_container(pod_id, ContainerConfig(name="hello", image="busybox",
                                                   command=["sleep", "3600"]), sb)
cri.start_container(cid)
```""",
        cleanup=_cleanup_pod,
        concept="RunPodSandbox, CreateContainer, StartContainer",
        difficulty="easy",
        needs=("root",),
    ),
    Exercise(
        id="20.2",
        title="Find a container and stop it",
        statement="""A pod sandbox named `ex-busy` runs two containers, `worker` and `sidecar`. Using only
CRI (`ListPodSandbox`, `ListContainers`, `StopContainer`), find the **worker** and **stop it**,
leaving the sidecar and the sandbox running. This is what a kubelet does for one container of a
pod. What state does `crictl ps -a` show for it afterwards, and is it gone?""",
        setup=lambda t: _start_pod(t, "busy", ["worker", "sidecar"], "20.2"),
        verify=_verify_stopped,
        solution=_solve_stop,
        solution_text="""```python
pod = next(s for s in cri.list_pod_sandboxes() if s.name == "ex-busy")
worker = next(c for c in cri.list_containers(pod.id) if c.name == "worker")
cri.stop_container(worker.id, timeout=2)   # EXITED, still listed, until RemoveContainer
```""",
        cleanup=lambda t: _remove_pods(t, "busy"),
        concept="ListContainers and StopContainer",
        difficulty="medium",
        needs=("root",),
    ),
    Exercise(
        id="20.3",
        title="A memory limit, from CRI to the cgroup",
        statement="""Through CRI, run a pod sandbox named `ex-small` with a container (`busybox`,
`sleep 3600`) that may use at most **64 MiB** of memory. A kubelet turns a pod's
`resources.limits.memory` into the `resources` of CreateContainer (`ContainerConfig(resources=
Resources(memory_bytes=...))`, `labkit.oci.resources.Resources`). The check does not ask the
runtime: it reads the container's cgroup through `/proc/<pid>/cgroup` and the kernel's memory
limit file.""",
        verify=_verify_limit,
        solution=_solve_limit,
        solution_text="""```python
from labkit.oci.resources import Resources
sb = PodSandboxConfig(name="ex-small", namespace="lab20", uid="ex-small-1")
pod_id = cri.run_pod_sandbox(sb)
cid = cri.create_container(pod_id, ContainerConfig(name="app", image="busybox", command=["sleep", "3600"],
                                                   resources=Resources(memory_bytes=64 * 2**20)), sb)
cri.start_container(cid)
```""",
        cleanup=lambda t: _remove_pods(t, "small"),
        concept="CRI resources become cgroup limits",
        difficulty="medium",
        needs=("root",),
    ),
]
