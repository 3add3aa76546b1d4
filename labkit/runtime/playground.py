"""One-call containers on labkit's native runtime, for labs and quick experiments.

Each call does the whole OCI path in the open: image -> overlay root -> ``config.json`` bundle ->
:class:`~labkit.oci.native.NativeContainer`, and removes every piece afterwards (container,
cgroup, mount, bundle), even when the cell fails::

    from labkit.runtime import playground
    r = playground.run(["sh", "-c", "echo $$"], memory=32 << 20)
    r.exit_code, r.stdout, r.oom_killed, r.counters       # counters: the kernel's OOM numbers

    with playground.container(["sleep", "30"], hostname="box") as c:
        c.pid                      # the host PID of the container's PID 1
        c.exec(["ps"]).stdout

Needs root on Linux; otherwise :class:`labkit.oci.native.NotRoot` says so and labs fall back to
the simulated runtime (``labkit.runtime.run(..., runtime="simulated")``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.oci import spec
from labkit.oci.bundle import Bundle
from labkit.oci.native import NativeContainer, NotRoot
from labkit.runtime.oneshot import limits

RUNTIME_LABEL = "labkit native runtime (fork + namespaces + pivot_root + cgroups)"


@dataclass
class Finished:
    exit_code: int
    stdout: str
    stderr: str
    oom_killed: bool
    reason: str
    counters: dict[str, int] = field(default_factory=dict)  # the kernel's OOM counters
    stats: dict[str, Any] = field(default_factory=dict)  # memory / cpu / pids usage at exit
    cgroup_files: dict[str, str] = field(default_factory=dict)  # limit files and their contents
    host_pid: int | None = None
    runtime: str = RUNTIME_LABEL



def check_host() -> None:
    """Raise :class:`NotRoot` (with what to do) when this host cannot run native containers."""
    if not hasattr(os, "geteuid") or os.uname().sysname != "Linux":
        why = f"this is {os.uname().sysname if hasattr(os, 'uname') else 'not Linux'}"
    elif os.geteuid() != 0 or os.environ.get("LABKIT_PRETEND_NOT_ROOT"):
        why = "this session is not root"
    else:
        return
    raise NotRoot(f"real containers need Linux and root (namespaces, mounts, cgroups); {why}")


@contextlib.contextmanager
def container(args: list[str], image: str = "busybox", hostname: str | None = None,
              memory: int | None = None, cpus: float | None = None, pids: int | None = None,
              stdout: int | None = None, stderr: int | None = None, start: bool = True,
              store: Any = None, **spec_kw: Any) -> Iterator[NativeContainer]:
    """A running container (or created, with ``start=False``); everything is removed on exit.

    ``store`` is an :class:`~labkit.images.ImageStore` (default: the shared one)."""
    check_host()
    from labkit.images import ImageStore
    from labkit.paths import state_dir

    store = store or ImageStore()
    img = store.ensure(image)
    cid = f"lab-{uuid.uuid4().hex[:10]}"
    work = Path(tempfile.mkdtemp(prefix=f"{cid}-", dir=state_dir()))
    os.chmod(work, 0o711)  # with a user namespace, the container's root is an ordinary uid here
    cfg = spec.make_config(args, hostname=hostname or cid, cgroups_path=f"/labkit/{cid}",
                           resources=limits(memory, cpus, pids), env=img.env or None,
                           **spec_kw)
    bundle = Bundle.create(work / "bundle", cfg)
    rootfs = store.prepare_rootfs(img, bundle.rootfs)
    c = NativeContainer(bundle.path, cid, stdout=stdout, stderr=stderr)
    try:
        c.create(start_now=start)
        yield c
    finally:
        try:
            c.delete(force=True)
        finally:
            rootfs.unmount()
            shutil.rmtree(work, ignore_errors=True)


def run(args: list[str], image: str = "busybox", memory: int | None = None, cpus: float | None = None,
        pids: int | None = None, hostname: str | None = None, store: Any = None, **spec_kw: Any) -> Finished:
    """Run ``args`` to completion and return its output plus what the kernel counted."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        with container(args, image=image, hostname=hostname, memory=memory, cpus=cpus, pids=pids,
                       stdout=out.fileno(), stderr=err.fileno(), store=store, **spec_kw) as c:
            st = c.wait()
            cg = c.cgroup()
            files = {}
            for ctrl, names in (("memory", ("memory.limit_in_bytes", "memory.max", "memory.failcnt",
                                            "memory.max_usage_in_bytes", "memory.oom_control",
                                            "memory.events")),
                                ("cpu", ("cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.max", "cpu.stat")),
                                ("pids", ("pids.max", "pids.events"))):
                d, _v = cg._ctrl_dir(ctrl)
                for n in names:
                    if d is not None and (d / n).exists():
                        files[str(d / n)] = (d / n).read_text().strip()
            result = Finished(st.code, "", "", st.oom_killed, st.reason, cg.oom_counters(), cg.stats(),
                              files, c.pid)
        out.seek(0)
        err.seek(0)
        result.stdout = out.read().decode(errors="replace")
        result.stderr = err.read().decode(errors="replace")
    return result


__all__ = ["Finished", "NotRoot", "RUNTIME_LABEL", "check_host", "container", "run"]
