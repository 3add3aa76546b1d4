"""Lab 4's exercises: what a container's process may do to its root.

The learner writes an OCI bundle (``config.json`` plus a root file system) and runs it on labkit's
runtime under a container ID, as ``runc run`` would. Each check loads that container by ID and
reads the kernel's view of its first process: the capability sets in ``/proc/<pid>/status`` and
the mount table in ``/proc/<pid>/mountinfo``; then it tries the forbidden thing inside.
"""

from __future__ import annotations

import shutil
from typing import Any

from labkit.practice import Exercise, Target, Verdict

NEEDS = ("root",)
CAP_SYS_CHROOT = 18


def _load(cid: str) -> tuple[Any, int] | tuple[None, str]:
    """(container, pid) of a running native container, or (None, hint)."""
    from labkit.oci.native import NativeContainer, NativeError

    try:
        c = NativeContainer.load(cid)
        state = c.state()
    except NativeError:
        return None, (f"there is no container {cid!r} on labkit's native runtime yet "
                      "(python -m labkit.oci.native list shows them)")
    if state.get("status") != "running" or not state.get("pid"):
        return None, f"container {cid!r} is {state.get('status')}; it must be running (give it sleep 600)"
    return c, int(state["pid"])


def _caps(pid: int, field: str) -> int:
    from labkit.practice import containers as box

    return int(box.proc_status(pid).get(field, "0"), 16)


def _make_bundle(t: Target, base: str, **spec_kw: Any) -> Any:
    """The reference solution's bundle: busybox copied into rootfs/, and a config.json."""
    from labkit.images import ImageStore
    from labkit.oci import spec
    from labkit.oci.bundle import Bundle

    path = t.workdir / base
    shutil.rmtree(path, ignore_errors=True)
    bundle = Bundle.create(path, spec.make_config(["sleep", "600"], **spec_kw))
    store = ImageStore()
    store.prepare_rootfs(store.ensure("busybox"), bundle.rootfs, overlay=False)
    return bundle


def _start(t: Target, base: str, bundle: Any) -> None:
    from labkit.oci.native import NativeContainer

    NativeContainer(bundle.path, t.name(base), detach=True).create(start_now=True)


def _delete(t: Target, base: str) -> None:
    from labkit.oci.native import NativeContainer, NativeError

    try:
        NativeContainer.load(t.name(base)).delete(force=True)
    except NativeError:
        pass
    shutil.rmtree(t.workdir / base, ignore_errors=True)


# ---- 4.1: no CAP_SYS_CHROOT ---------------------------------------------------------------------
def _verify_nochroot(t: Target) -> Verdict:
    cid = t.name("nochroot")
    c, pid = _load(cid)
    if c is None:
        return Verdict.not_yet(str(pid))
    for field in ("CapBnd", "CapEff"):
        if _caps(pid, field) & (1 << CAP_SYS_CHROOT):
            return Verdict.not_yet(f"{cid}'s PID 1 (host PID {pid}) still has CAP_SYS_CHROOT in {field}; leave it out "
                                   "of every capability set in config.json")
    if not _caps(pid, "CapBnd"):
        return Verdict.not_yet(f"{cid} has no capabilities at all; drop only CAP_SYS_CHROOT, keep the defaults")
    out = c.exec(["chroot", "/", "true"])
    if out.exit_code == 0:
        return Verdict.not_yet(f"chroot still works inside {cid}")
    said = (out.stderr or b"").decode(errors="replace").strip()
    return Verdict.ok(f"{cid}: CAP_SYS_CHROOT is in neither CapBnd nor CapEff of host PID {pid}; chroot inside "
                      f"fails ({said or 'exit ' + str(out.exit_code)})")


def _solve_nochroot(t: Target) -> None:
    from labkit.oci import spec

    default = spec.make_config(["true"])["process"]["capabilities"]["bounding"]
    bundle = _make_bundle(t, "nochroot", capabilities=[c for c in default if c != "CAP_SYS_CHROOT"])
    _start(t, "nochroot", bundle)


# ---- 4.2: a read-only root ----------------------------------------------------------------------
def _verify_readonly(t: Target) -> Verdict:
    cid = t.name("readonly")
    c, pid = _load(cid)
    if c is None:
        return Verdict.not_yet(str(pid))
    try:
        lines = open(f"/proc/{pid}/mountinfo").read().splitlines()
    except OSError:
        return Verdict.not_yet(f"{cid}'s process {pid} is gone")
    root = next((line.split() for line in lines if line.split()[4] == "/"), None)
    if root is None:
        return Verdict.not_yet(f"{cid}'s mount table has no '/' entry")
    options = root[5].split(",")
    if "ro" not in options:
        return Verdict.not_yet(f"{cid}'s root is mounted {root[5]}: ask for a read-only root in config.json "
                               "(root.readonly)")
    out = c.exec(["touch", "/probe"])
    if out.exit_code == 0:
        return Verdict.not_yet(f"touch /probe succeeded inside {cid}")
    return Verdict.ok(f"{cid}: '/' is mounted {root[5]} in its own mount table (/proc/{pid}/mountinfo); "
                      f"touch /probe fails: {(out.stderr or b'').decode(errors='replace').strip()}")


def _solve_readonly(t: Target) -> None:
    _start(t, "readonly", _make_bundle(t, "readonly", readonly_rootfs=True))


# ---- 4.3: not root inside ------------------------------------------------------------------------
def _verify_nonroot(t: Target) -> Verdict:
    from labkit.practice import containers as box

    cid = t.name("nonroot")
    c, pid = _load(cid)
    if c is None:
        return Verdict.not_yet(str(pid))
    status = box.proc_status(pid)
    uids = status.get("Uid", "0").split()
    if "0" in uids:
        return Verdict.not_yet(f"{cid}'s PID 1 (host PID {pid}) runs with uids {uids} (real, effective, saved, fs); "
                               "set the process user in config.json to a uid other than 0")
    if _caps(pid, "CapEff"):
        return Verdict.not_yet(f"{cid} runs as uid {uids[0]} but still has effective capabilities "
                               f"({status.get('CapEff')})")
    out = c.exec(["chroot", "/", "true"])
    if out.exit_code == 0:
        return Verdict.not_yet(f"chroot still works inside {cid}")
    return Verdict.ok(f"{cid}: PID 1 runs as uid {uids[0]} with CapEff {status.get('CapEff')}: even with "
                      "CAP_SYS_CHROOT in its bounding set, a non-root process cannot chroot")


def _solve_nonroot(t: Target) -> None:
    _start(t, "nonroot", _make_bundle(t, "nonroot", uid=1000, gid=1000))


EXERCISES = [
    Exercise(
        id="4.1",
        title="A container that cannot chroot",
        statement="""The chroot escape needs `CAP_SYS_CHROOT`, which the default container capability set
keeps. Write an OCI bundle in a folder of your own (a busybox root file system and a
`config.json` from `spec.make_config(["sleep", "600"], capabilities=[...])`) whose capability list
is the default one **without** `CAP_SYS_CHROOT`, and run it on labkit's runtime with the ID
`ex-nochroot`: `python -m labkit.oci.native run ex-nochroot --bundle DIR --detach`. The check
reads the capability sets of its first process in `/proc/<pid>/status` and tries `chroot` inside.""",
        verify=_verify_nochroot,
        solution=_solve_nochroot,
        solution_text="""```python
from labkit.images import ImageStore
from labkit.oci import spec
from labkit.oci.bundle import Bundle

default = spec.make_config(["true"])["process"]["capabilities"]["bounding"]
b = Bundle.create("nochroot", spec.make_config(["sleep", "600"],
                  capabilities=[c for c in default if c != "CAP_SYS_CHROOT"]))
store = ImageStore()
store.prepare_rootfs(store.ensure("busybox"), b.rootfs, overlay=False)
```
```bash
python -m labkit.oci.native run ex-nochroot --bundle nochroot --detach
```""",
        cleanup=lambda t: _delete(t, "nochroot"),
        concept="capabilities",
        difficulty="medium",
        needs=NEEDS,
    ),
    Exercise(
        id="4.2",
        title="A read-only root",
        statement="""Run a container with the ID `ex-readonly` (same way as 4.1, command `sleep 600`)
whose root file system is mounted **read-only**, so nothing in it, not even root, can change the
image's files. The check reads the `/` line of the container's own mount table
(`/proc/<pid>/mountinfo`) and tries to create a file inside.""",
        verify=_verify_readonly,
        solution=_solve_readonly,
        solution_text="""```python
b = Bundle.create("readonly", spec.make_config(["sleep", "600"], readonly_rootfs=True))  # root.readonly: true
store.prepare_rootfs(store.ensure("busybox"), b.rootfs, overlay=False)
```
```bash
python -m labkit.oci.native run ex-readonly --bundle readonly --detach
```""",
        cleanup=lambda t: _delete(t, "readonly"),
        concept="the root mount",
        difficulty="medium",
        needs=NEEDS,
    ),
    Exercise(
        id="4.3",
        title="Not root inside",
        statement="""Keep the default capability list, but run the container's process as an ordinary user:
the ID is `ex-nonroot`, the command `sleep 600`, and the process's uid is not 0 (the `user` field
of `config.json`, `uid=` in `spec.make_config`). The check reads the uids and the *effective*
capabilities of its first process in `/proc/<pid>/status`, and tries `chroot` inside.""",
        verify=_verify_nonroot,
        solution=_solve_nonroot,
        solution_text="""```python
b = Bundle.create("nonroot", spec.make_config(["sleep", "600"], uid=1000, gid=1000))   # process.user
store.prepare_rootfs(store.ensure("busybox"), b.rootfs, overlay=False)
```
```bash
python -m labkit.oci.native run ex-nonroot --bundle nonroot --detach
grep -E 'Uid|CapEff' /proc/<PID>/status     # Uid: 1000 ...  CapEff: 0000000000000000
```""",
        cleanup=lambda t: _delete(t, "nonroot"),
        concept="users and effective capabilities",
        difficulty="hard",
        needs=NEEDS,
    ),
]
