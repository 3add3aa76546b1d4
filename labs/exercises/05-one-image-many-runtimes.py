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
]
