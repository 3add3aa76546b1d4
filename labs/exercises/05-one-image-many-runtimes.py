"""Lab 5's exercises: one image, several runtimes, one kernel.

The learner runs the same image on different backends; each check finds the containers by name
on their backend and compares what the kernel shows of them: the bytes of the program each one
runs (``/proc/<pid>/exe``), their namespaces, and the cgroup file a memory limit ends up in.
"""

from __future__ import annotations

import hashlib

from labkit.practice import Exercise, Target, Verdict
from labkit.practice import containers as box

MiB = 1 << 20


def _exe_digest(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/exe", "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


# ---- 5.1: the same image on two runtimes ------------------------------------------------------
def _verify_two(t: Target) -> Verdict:
    from labkit.images import ImageStore

    pair = {}
    for backend in ("native", "runc"):
        name = t.name(backend)
        found = box.find(name, backend)
        if found is None:
            return Verdict.not_yet(box.missing(name, backend, how=f"labkit run -d --runtime {backend} ..."))
        if not found.running:
            return Verdict.not_yet(f"{box.describe(found)} on {backend}: it must still be running")
        pair[backend] = found
    digest = ImageStore().ensure("busybox").digest
    refs = {b: f.status.image_ref for b, f in pair.items()}
    if any(ref != digest for ref in refs.values()):
        return Verdict.not_yet(f"the two containers run images {refs}; run busybox ({digest[:19]}...) on both")
    pids = {b: f.status.pid for b, f in pair.items()}
    if box.namespace(pids["native"], "pid") == box.namespace(pids["runc"], "pid"):
        return Verdict.not_yet("both containers are in one PID namespace; start each as its own container")
    exes = {b: _exe_digest(p) for b, p in pids.items()}
    if None in exes.values() or exes["native"] != exes["runc"]:
        return Verdict.not_yet(f"the first processes run different programs ({exes}); run the same command "
                               "(sleep 600) in both")
    return Verdict.ok(f"host PIDs {pids['native']} (native) and {pids['runc']} (runc): two PID namespaces, one "
                      f"image {digest[:19]}..., and the same program bytes (sha256 {exes['runc'][:12]}...)")


def _solve_two(t: Target) -> None:
    for backend in ("native", "runc"):
        box.run_detached(t.name(backend), ["sleep", "600"], backend=backend)


def _cleanup_two(t: Target) -> None:
    for backend in ("native", "runc"):
        box.remove(t.name(backend), backend)


# ---- 5.2: Docker's limit is the same kernel file -------------------------------------------------
def _verify_docker(t: Target) -> Verdict:
    from labkit.images import ImageStore

    name = t.name("docker")
    found = box.find(name, "docker")
    if found is None:
        return Verdict.not_yet(box.missing(name, "docker", how="labkit run -d --runtime docker --memory 64m ..."))
    if not found.running:
        return Verdict.not_yet(f"{box.describe(found)} on docker: it must still be running")
    d = box.cgroup_dir(found.status.pid, "memory")
    limit_file = (d / "memory.limit_in_bytes") if d and (d / "memory.limit_in_bytes").exists() else \
        (d / "memory.max") if d else None
    if limit_file is None or not limit_file.exists():
        return Verdict.not_yet(f"{name}'s process is in no memory cgroup this check can read")
    raw = limit_file.read_text().strip()
    if not raw.isdigit() or int(raw) != 64 * MiB:
        return Verdict.not_yet(f"{limit_file} holds {raw}; ask Docker for a 64 MiB memory limit")
    info = found.runtime.client.api.inspect_image(found.status.image)  # type: ignore[attr-defined]
    config_digest = ImageStore().ensure("busybox").config_digest
    if info["Id"] != config_digest:
        return Verdict.not_yet(f"{name} runs Docker image {info['Id'][:19]}..., not labkit's busybox "
                               f"({config_digest[:19]}...)")
    return Verdict.ok(f"Docker ran labkit's busybox (image ID {info['Id'][:19]}... = labkit's config digest); "
                      f"its limit is {limit_file} = {raw}, the same kind of file labkit's runtime writes")


def _solve_docker(t: Target) -> None:
    box.run_detached(t.name("docker"), ["sleep", "600"], backend="docker", memory="64m")


# ---- 5.3: two containers, one pod sandbox ---------------------------------------------------------
def _verify_pod(t: Target) -> Verdict:
    pod, names = t.name("pod"), (t.name("app"), t.name("sidecar"))
    found = [box.find(n, "runc") for n in names]
    for n, f in zip(names, found, strict=True):
        if f is None:
            return Verdict.not_yet(box.missing(n, "runc", how=f"create it in a pod sandbox named {pod!r} with the "
                                                              "CRI calls (run_pod_sandbox, create_container)"))
        if not f.running:
            return Verdict.not_yet(f"{box.describe(f)} on runc: start it (start_container), and keep it running")
    app, side = found[0], found[1]  # type: ignore[index]
    rt = app.runtime
    sandbox = rt.pod_sandbox_status(app.status.sandbox_id)
    if sandbox.name != pod or side.status.sandbox_id != app.status.sandbox_id:
        return Verdict.not_yet(f"{names[0]} and {names[1]} are in sandboxes {app.status.sandbox_id[:12]} and "
                               f"{side.status.sandbox_id[:12]}; create both in the one sandbox named {pod!r}")
    pids = (app.status.pid, side.status.pid)
    net = [box.namespace(p, "net") for p in pids]
    mnt = [box.namespace(p, "mnt") for p in pids]
    if net[0] != net[1]:
        return Verdict.not_yet(f"the two containers have different network namespaces {net}")
    if mnt[0] == mnt[1]:
        return Verdict.not_yet("the two containers share one mount namespace; each should have its own root")
    sandbox_net = None
    if sandbox.netns_path:
        import os

        sandbox_net = f"net:[{os.stat(sandbox.netns_path).st_ino}]"
    if sandbox_net and sandbox_net != net[0]:
        return Verdict.not_yet(f"the containers share {net[0]}, but the sandbox's network namespace is {sandbox_net}")
    return Verdict.ok(f"host PIDs {pids[0]} and {pids[1]} share the pod's network namespace {net[0]} "
                      f"but have their own mount namespaces ({mnt[0]}, {mnt[1]})")


def _solve_pod(t: Target) -> None:
    from labkit.runtime.base import ContainerConfig, PodSandboxConfig

    rt = box.runtime("runc")
    pod = PodSandboxConfig(name=t.name("pod"), hostname="pod")
    sid = rt.run_pod_sandbox(pod)  # type: ignore[union-attr]
    for name in (t.name("app"), t.name("sidecar")):
        cid = rt.create_container(sid, ContainerConfig(name=name, image="busybox", command=["sleep", "600"]), pod)  # type: ignore[union-attr]
        rt.start_container(cid)  # type: ignore[union-attr]


def _cleanup_pod(t: Target) -> None:
    from labkit.runtime.podteardown import remove_pod

    rt = box.runtime("runc")
    if rt is None:
        return
    for sb in rt.list_pod_sandboxes():
        if sb.name == t.name("pod"):
            remove_pod(rt, sb.id, grace=0.5)


EXERCISES = [
    Exercise(
        id="5.1",
        title="One image on two runtimes",
        statement="""Run `busybox` with the command `sleep 600` twice, in the background: once on labkit's
native runtime as `ex-native` and once on runc as `ex-runc` (`labkit run -d --runtime ...`).
The check finds both on their runtimes, and compares what the kernel shows: two PID namespaces,
but the same image digest and the very same program bytes (`/proc/<pid>/exe`).""",
        verify=_verify_two,
        solution=_solve_two,
        solution_text="""```bash
labkit run -d --runtime native --name ex-native busybox -- sleep 600
labkit run -d --runtime runc   --name ex-runc   busybox -- sleep 600
```""",
        cleanup=_cleanup_two,
        concept="the OCI image and runtime specs",
        difficulty="easy",
        needs=("root", "runc"),
    ),
    Exercise(
        id="5.2",
        title="Docker writes the same kernel file",
        statement="""Run labkit's `busybox` on **Docker** as `ex-docker`, in the background, with a 64 MiB memory
limit (`labkit run -d --runtime docker --memory 64m ...`; labkit loads its image into Docker).
Then find the limit yourself: `/proc/<pid>/cgroup` names the container's memory cgroup. The check
reads that file, and compares Docker's image ID with labkit's config digest.""",
        verify=_verify_docker,
        solution=_solve_docker,
        solution_text="""```bash
labkit run -d --runtime docker --name ex-docker --memory 64m busybox -- sleep 600
labkit ps                                            # the host PID
cat /proc/<PID>/cgroup | grep memory                 # .../docker/<id>
cat /sys/fs/cgroup/memory/docker/<id>/memory.limit_in_bytes   # 67108864
```""",
        cleanup=lambda t: box.remove(t.name("docker"), "docker"),
        concept="runtimes share the kernel's cgroups",
        difficulty="medium",
        needs=("root", "docker"),
    ),
    Exercise(
        id="5.3",
        title="Two containers, one pod",
        statement="""Make the CRI calls a kubelet makes (as in the lab's last cell, but keep what you make):
on runc, one pod sandbox named `ex-pod`, and in it two containers `ex-app` and `ex-sidecar` from
`busybox`, each running `sleep 600`. The check compares the namespaces of their two processes:
which ones the pod's containers share, and which each keeps for itself.""",
        verify=_verify_pod,
        solution=_solve_pod,
        solution_text="""```python
import labkit.runtime as rt
from labkit.runtime.base import ContainerConfig, PodSandboxConfig

r = rt.get("runc")
pod = PodSandboxConfig(name="ex-pod", hostname="pod")
sid = r.run_pod_sandbox(pod)
for name in ("ex-app", "ex-sidecar"):
    cid = r.create_container(sid, ContainerConfig(name=name, image="busybox", command=["sleep", "600"]), pod)
    r.start_container(cid)
```""",
        cleanup=_cleanup_pod,
        concept="a pod sandbox shares its network namespace",
        difficulty="hard",
        needs=("root", "runc"),
    ),
]
