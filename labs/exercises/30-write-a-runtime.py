"""Track "Write a container runtime": one exercise per step, each checked on a real container.

The learner's module is ``runtime.py`` in the lab's work folder (copied from
``labs/tracks/runtime/skeleton.py`` by the set-up). Each verify runs steps 1..N of it through
:mod:`labkit.practice.buildruntime`, which starts ``sleep`` in the container, and then reads what
the kernel says about that process: ``/proc/PID/ns/*``, its hostname, ``mountinfo``, its
cgroup and that cgroup's files, ``CapEff``. Each reference solution fills in that step's function
(and the earlier ones) from ``labs/tracks/runtime/solution.py``.
"""

from __future__ import annotations

import ast
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from labkit.practice import Exercise, Target, Verdict
from labkit.practice import buildruntime as rt

TRACK = Path(__file__).resolve().parents[1] / "tracks" / "runtime"
SKELETON, REFERENCE = TRACK / "skeleton.py", TRACK / "solution.py"
NAMESPACES = {"uts": "CLONE_NEWUTS", "mnt": "CLONE_NEWNS", "ipc": "CLONE_NEWIPC", "net": "CLONE_NEWNET",
              "pid": "CLONE_NEWPID"}


def module_path(t: Target) -> Path:
    return t.workdir / "runtime.py"


def copy_skeleton(t: Target) -> None:
    """Set-up: the learner's runtime.py starts as the skeleton (kept if it is already there)."""
    t.workdir.mkdir(parents=True, exist_ok=True)
    if not module_path(t).exists():
        shutil.copyfile(SKELETON, module_path(t))


def _functions(source: str) -> dict[str, tuple[int, int]]:
    """Top-level function name -> (first line, last line), 1-based, decorators included."""
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            out[node.name] = (first, node.end_lineno or node.lineno)
    return out


def fill_in(path: Path, names: list[str]) -> None:
    """Replace the functions ``names`` in the learner's file with the reference's (the rest stays)."""
    ref = REFERENCE.read_text()
    ref_lines, ref_at = ref.splitlines(), _functions(ref)
    lines = path.read_text().splitlines()
    at = _functions("\n".join(lines))
    for name in sorted(names, key=lambda n: at.get(n, (10**9,))[0], reverse=True):
        a, b = ref_at[name]
        new = ref_lines[a - 1:b]
        if name in at:
            x, y = at[name]
            lines[x - 1:y] = new
        else:
            lines += ["", "", *new]
    text = "\n".join(lines) + "\n"
    for needed in ("from labkit.oci import capabilities as caps", "from labkit.oci import syscalls as sc",
                   "import os"):
        if needed not in text:
            text = needed + "\n" + text
    path.write_text(text)


def _solution(step: int):
    def solve(t: Target) -> None:
        copy_skeleton(t)
        fill_in(module_path(t), [fn for fn, _ in rt.STEPS[:step]])
    return solve


# --------------------------------------------------------------------------- the kernel's view
def _ns(pid: int | str, kind: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def _status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def _mounts(pid: int | str) -> list[dict[str, str]]:
    """``/proc/PID/mountinfo`` as mount point, file system type and super options."""
    out = []
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        f = line.split()
        dash = f.index("-")
        out.append({"point": f[4], "fstype": f[dash + 1], "options": f[dash + 3] if len(f) > dash + 3 else ""})
    return out


def uts_hostname(pid: int) -> str:
    """The hostname inside ``pid``'s UTS namespace (a helper process joins it with setns)."""
    code = ("import os, sys; from labkit.oci import syscalls as sc; "
            f"fd = os.open('/proc/{pid}/ns/uts', os.O_RDONLY); sc.setns(fd, 0); print(os.uname().nodename)")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20,
                          check=True).stdout.strip()


def memory_cgroup(pid: int) -> tuple[str, Path | None]:
    """(the cgroup path of ``pid``'s memory controller, the kernel's limit file for it)."""
    from labkit.oci.cgroups import host_layout

    layout = host_layout()
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        if "memory" in ctrls.split(",") and "memory" in layout.v1:
            return path, layout.v1["memory"] / path.lstrip("/") / "memory.limit_in_bytes"
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if line.startswith("0::") and layout.v2 is not None:
            path = line[3:]
            return path, layout.v2 / path.lstrip("/") / "memory.max"
    return "", None


def _overlay(mounts: list[dict[str, str]], upper: str) -> dict[str, str] | None:
    return next((m for m in mounts if m["fstype"] == "overlay" and f"upperdir={upper}" in m["options"]), None)


def _check_namespaces(t: Target, box: rt.Box) -> Verdict:
    shared = [k for k in NAMESPACES if _ns(box.pid, k) == _ns("self", k)]
    if shared:
        return Verdict.not_yet("the container still shares these namespaces with the host: "
                               + ", ".join(f"{k} (add sc.{NAMESPACES[k]})" for k in shared))
    nspid = _status(box.pid).get("NSpid", "").split()
    if nspid[-1:] != ["1"]:
        return Verdict.not_yet(f"the container's program is not PID 1 of its namespace (NSpid: {' '.join(nspid)})")
    return Verdict.ok(f"host PID {box.pid} is PID 1 of its own pid namespace, with its own uts, mnt, ipc, net: "
                      + ", ".join(f"{k}={_ns(box.pid, k).split(':')[1]}" for k in NAMESPACES))


def _check_hostname(t: Target, box: rt.Box) -> Verdict:
    want = t.name("rt")
    got = uts_hostname(box.pid)
    if got != want:
        return Verdict.not_yet(f"the container's hostname is {got!r}; set_hostname should make it {want!r}")
    if socket.gethostname() == want:
        return Verdict.not_yet("the host itself was renamed: the hostname must be set in the container's UTS namespace")
    return Verdict.ok(f"inside: {got!r}; the host is still {socket.gethostname()!r}")


def _check_overlay(t: Target, box: rt.Box) -> Verdict:
    upper = box.info["upperdir"]
    mine = _overlay(_mounts(box.pid), upper)
    if mine is None:
        return Verdict.not_yet(f"no overlay mount with upperdir={upper} in the container's mount table")
    if _overlay(_mounts("self"), upper) is not None:
        return Verdict.not_yet("the overlay mount is visible on the host too: it must be made in the container's "
                               "own mount namespace")
    return Verdict.ok(f"overlay at {mine['point']} in the container's mount table only ({mine['options'][:90]}...)")


def _check_pivot(t: Target, box: rt.Box) -> Verdict:
    mounts = _mounts(box.pid)
    roots = [m for m in mounts if m["point"] == "/"]
    if len(roots) != 1 or _overlay(roots, box.info["upperdir"]) is None:
        return Verdict.not_yet(f"'/' of the container is {', '.join(m['fstype'] for m in roots) or 'nothing'}, "
                               "not the image's overlay alone: pivot_root into it and detach the old root")
    host_left = [m["point"] for m in mounts if m["point"] != "/" and not m["point"].startswith("/proc")]
    if host_left:
        return Verdict.not_yet(f"the old root's mounts are still there ({', '.join(host_left[:4])} ...): "
                               "unmount '.' with MNT_DETACH after pivot_root")
    if not Path(f"/proc/{box.pid}/root/bin/busybox").exists():
        return Verdict.not_yet("the container's root has no /bin/busybox: it is not the image")
    return Verdict.ok(f"the container's mount table: {len(mounts)} mount(s), '/' is the image's overlay, "
                      "nothing of the host left")


def _check_proc(t: Target, box: rt.Box) -> Verdict:
    if not any(m["point"] == "/proc" and m["fstype"] == "proc" for m in _mounts(box.pid)):
        return Verdict.not_yet("no proc file system is mounted at /proc in the container")
    proc = Path(f"/proc/{box.pid}/root/proc")
    pids = sorted(int(p) for p in os.listdir(proc) if p.isdigit())
    if pids != [1]:
        return Verdict.not_yet(f"the container's /proc lists PIDs {pids[:8]}: it shows another PID namespace")
    cmd = (proc / "1" / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    return Verdict.ok(f"the container's /proc shows one process: PID 1 = {cmd!r}")


def _check_cgroup(t: Target, box: rt.Box) -> Verdict:
    path, _ = memory_cgroup(box.pid)
    want = box.info.get("cgroup")
    if path != want:
        return Verdict.not_yet(f"the kernel puts the container's process in memory cgroup {path or '?'}, not {want}")
    return Verdict.ok(f"/proc/{box.pid}/cgroup: memory -> {path}")


def _check_memory(t: Target, box: rt.Box) -> Verdict:
    path, limit_file = memory_cgroup(box.pid)
    if path != box.info.get("cgroup") or limit_file is None:
        return Verdict.not_yet(f"the process is in memory cgroup {path or '?'}: do step 6 first")
    raw = limit_file.read_text().strip()
    if raw != str(rt.MEMORY_LIMIT):
        return Verdict.not_yet(f"{limit_file.name} of {path} says {raw}, not {rt.MEMORY_LIMIT} (64 MiB)")
    return Verdict.ok(f"{limit_file} = {raw} (64 MiB)")


def _check_capabilities(t: Target, box: rt.Box) -> Verdict:
    from labkit.oci import capabilities as caps

    want = caps.mask(rt.keep_capabilities())
    st = _status(box.pid)
    for field in ("CapBnd", "CapPrm", "CapEff"):
        got = int(st[field], 16)
        if got != want:
            extra = caps.names(got & ~want)
            return Verdict.not_yet(f"{field} of the running program still has {', '.join(extra[:4]) or 'other bits'}"
                                   f"{' ...' if len(extra) > 4 else ''}"
                                   + (": root gets the bounding set back at exec; drop it with PR_CAPBSET_DROP"
                                      if field == "CapBnd" else ""))
    return Verdict.ok(f"CapEff {int(st['CapEff'], 16):016x}: {len(caps.names(want))} capabilities, "
                      f"no CAP_SYS_ADMIN")


CHECKS = [_check_namespaces, _check_hostname, _check_overlay, _check_pivot, _check_proc, _check_cgroup,
          _check_memory, _check_capabilities]


def _verify(step: int):
    def verify(t: Target) -> Verdict:
        path = module_path(t)
        if not path.exists():
            return Verdict.not_yet(f"there is no {path} yet: copy labs/tracks/runtime/skeleton.py there")
        try:
            box = rt.start(path, step, t.name("rt"), t.workdir / f"run-{step}")
        except rt.RuntimeStepError as err:
            return Verdict.not_yet(str(err))
        with box:
            return CHECKS[step - 1](t, box)
    return verify


STATEMENTS = [
    """Write `create_namespaces()`: one `sc.unshare(...)` call that moves the process into new UTS,
mount, IPC, network and PID namespaces. The check compares `/proc/PID/ns/*` of the running
program with the host's, and reads `NSpid` in `/proc/PID/status`: the program must be PID 1.""",
    """Write `set_hostname(name)`. The check joins the container's UTS namespace and reads the
hostname there, and makes sure the host kept its own.""",
    """Write `mount_rootfs(lowerdirs, upperdir, workdir, target)`: mount the image's layers at
`target` with overlayfs. The check looks for the overlay mount in the container's
`/proc/PID/mountinfo`, and makes sure the host does not see it.""",
    """Write `pivot_into(new_root)`: make the overlay the root of the container's mount namespace
and get rid of the old root. The check reads the container's mount table: "/" must be the
overlay, and no mount of the host may be left.""",
    """Write `mount_proc()`. The check finds a `proc` mount at `/proc` in the container, and lists
the PIDs that *that* `/proc` shows: only the container's PID 1.""",
    """Write `join_cgroup(cgroup_dir, pid)` (it runs on the host, before the program starts). The
check reads `/proc/PID/cgroup`: the program's memory cgroup must be the one the runner made.""",
    """Write `set_memory_limit(cgroup_dir, limit_bytes)` for cgroup v1 and v2. The check finds the
program's cgroup from `/proc/PID/cgroup` and reads the kernel's limit file there: 64 MiB.""",
    """Write `drop_capabilities(keep)`: after it, the program may hold only Docker's default 14
capabilities. The check reads `CapBnd`, `CapPrm` and `CapEff` of the running program (after
its `exec`, which is where a half-done drop is undone).""",
]
CONCEPTS = ["namespaces", "UTS namespace", "overlayfs", "pivot_root", "PID namespace and procfs", "cgroups",
            "cgroup memory limit", "capabilities"]
DIFFICULTY = ["easy", "easy", "medium", "hard", "easy", "easy", "medium", "hard"]


def _solution_text(fn: str) -> str:
    src = REFERENCE.read_text()
    a, b = _functions(src)[fn]
    return "In `runtime.py`:\n\n```python\n" + "\n".join(src.splitlines()[a - 1:b]) + "\n```"


EXERCISES = [
    Exercise(
        id=f"30.{n}",
        title=f"Step {n}: {what}",
        statement=STATEMENTS[n - 1],
        setup=copy_skeleton,
        verify=_verify(n),
        solution=_solution(n),
        solution_text=_solution_text(fn),
        concept=CONCEPTS[n - 1],
        difficulty=DIFFICULTY[n - 1],  # type: ignore[arg-type]
        needs=("root",),
        timeout=20.0,
    )
    for n, (fn, what) in enumerate(rt.STEPS, start=1)
]
