"""Leftover containers and sandboxes (their records, runtime state, roots, pinned namespaces) and
orphaned shims: the runtime's own records say what exists (:mod:`labkit.runtime.records`)."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

from labkit.runtime import mounts, records
from labkit.runtime.gc import Kind, Leak, run


# --- container records ----------------------------------------------------------
def _record_leaks() -> list[Leak]:
    out = []
    for backend in records.all_backends():
        root = records.backend_root(backend)
        for kind in ("containers", "sandboxes"):
            folder = root / kind
            if folder.is_dir():
                out += [Leak("containers", f"{backend}/{kind}/{p.name}") for p in sorted(folder.iterdir())]
        state = root / "state"
        if state.is_dir():
            out += [Leak("containers", f"{backend}/state/{p.name}") for p in sorted(state.iterdir()) if p.is_dir()]
    return out


def _kill_pid_file(path: Path) -> None:
    try:
        pid = int(path.read_text())
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass


def _remove_records() -> None:
    from labkit.runtime import sandbox

    for backend in records.all_backends():
        root = records.backend_root(backend)
        for cdir in sorted((root / "containers").glob("*")) if (root / "containers").is_dir() else []:
            _kill_pid_file(cdir / "pid")
        state = root / "state"
        binary = shutil.which(backend) if backend in ("runc", "crun") else None
        if binary and state.is_dir():
            for sdir in state.iterdir():
                argv = [binary, "--root", str(state), "delete", "--force", sdir.name]
                if backend == "crun":
                    argv = ["unshare", "-m", "sh", "-c", "umount /sys/fs/cgroup/unified 2>/dev/null; exec \"$@\"",
                            "sh"] + argv
                run(argv)
        if backend == "native" and state.is_dir():
            _delete_native(state)
        for cdir in sorted((root / "containers").glob("*")) if (root / "containers").is_dir() else []:
            _kill_pid_file(cdir / "shim.pid")
            mounts.unmount_under(cdir)
            if not mounts.mounted_under(cdir):
                shutil.rmtree(cdir, ignore_errors=True)
        for sdir in sorted((root / "sandboxes").glob("*")) if (root / "sandboxes").is_dir() else []:
            sandbox.destroy_namespaces(sdir.name, sdir / "ns")
            mounts.unmount_under(sdir)
            if not mounts.mounted_under(sdir):
                shutil.rmtree(sdir, ignore_errors=True)
        if state.is_dir():
            mounts.unmount_under(state)
            for sdir in state.iterdir():
                shutil.rmtree(sdir, ignore_errors=True)


def _delete_native(state: Path) -> None:
    """Let labkit's own runtime delete its containers (processes, cgroups, state)."""
    from labkit.oci import native

    for sdir in state.iterdir():
        try:
            native.NativeContainer.load(sdir.name, root=state).delete(force=True)
        except Exception:  # noqa: BLE001 - half-created: the cgroup sweep below removes the rest
            pass


# --- processes -----------------------------------------------------------------------
def _process_leaks() -> list[Leak]:
    """Shims whose container folder is gone (their container died with the record)."""
    out = []
    for p in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not p.name.isdigit():
            continue
        try:
            argv = (p / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"labkit.runtime.shim" in argv:
            cdir = argv[argv.index(b"labkit.runtime.shim") + 1].decode(errors="replace") \
                if argv.index(b"labkit.runtime.shim") + 1 < len(argv) else ""
            if not cdir or not Path(cdir).is_dir():
                out.append(Leak("processes", f"{p.name} shim for {cdir or '?'}"))
    return out


def _remove_processes() -> None:
    for leak in _process_leaks():
        try:
            os.kill(int(leak.what.split()[0]), signal.SIGKILL)
        except OSError:
            pass


CONTAINERS = Kind("containers", _record_leaks, _remove_records)
PROCESSES = Kind("processes", _process_leaks, _remove_processes)
