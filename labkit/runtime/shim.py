"""The shim: one small process per container that waits for it and writes down how it ended.

runc and crun exit as soon as a container is created, so someone else must be the container's
parent to learn its exit status. containerd runs a *shim* per container for exactly this; labkit
does the same: ``python -m labkit.runtime.shim <container-dir>``

1. becomes a child subreaper, so the container's first process is re-parented to it;
2. runs the OCI runtime's ``create`` (mode ``oci``) or the command itself (mode ``exec``, the
   simulated runtime) with stdout and stderr going to the container's log file;
3. tells the caller "ok <pid>" or "error <message>" on an inherited pipe;
4. waits for the container's process and writes ``exit.json`` (exit code, OOM kills, time).

The shim outlives the command that started it, so ``labkit run -d`` and ``labkit ps`` work.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

READY_FD_ENV = "LABKIT_SHIM_READY_FD"


def _say(fd: int | None, text: str) -> None:
    if fd is None:
        return
    try:
        os.write(fd, (text.replace("\n", " ") + "\n").encode())
        os.close(fd)
    except OSError:
        pass


def write_exit(cdir: Path, exit_code: int, reason: str = "", message: str = "", oom: int = 0) -> None:
    """Write ``exit.json`` atomically so readers never see half a file."""
    from labkit.atomicfile import write_atomic

    write_atomic(cdir / "exit.json", json.dumps({"exit_code": exit_code, "reason": reason, "message": message,
                                                 "oom_kills": oom, "finished_at": time.time()}))


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _reason(code: int, oom: int) -> str:
    if oom > 0 and code != 0:  # the kernel killed something in the container's cgroup
        return "OOMKilled"
    return "Completed" if code == 0 else "Error"


def _log_tail(log: Path, limit: int = 400) -> str:
    try:
        data = log.read_bytes()[-limit:]
    except OSError:
        return ""
    return data.decode(errors="replace").strip()


def _become_subreaper() -> None:
    if sys.platform.startswith("linux"):
        from labkit.oci import syscalls

        syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)


def _wait_for(pid: int) -> int:
    """Reap children until ``pid`` is gone; return its wait status."""
    while True:
        try:
            got, status = os.waitpid(-1, 0)
        except ChildProcessError:
            # not our child (no subreaper on this OS): poll until it disappears; code unknown
            while os.path.exists(f"/proc/{pid}"):
                time.sleep(0.05)
            return 255 << 8
        except InterruptedError:
            continue
        if got == pid:
            return status


def main(cdir_arg: str) -> int:
    cdir = Path(cdir_arg)
    task = json.loads((cdir / "shim.json").read_text())
    fd_text = os.environ.pop(READY_FD_ENV, None)
    ready_fd = int(fd_text) if fd_text else None
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    log = Path(task["log"])
    cgroups_path = task.get("cgroups_path")
    try:
        _become_subreaper()
    except OSError:
        pass
    (cdir / "shim.pid").write_text(str(os.getpid()))
    logf = open(log, "ab", buffering=0)  # noqa: SIM115 - inherited by the container, kept open
    try:
        if task["mode"] == "exec":
            # its own process group, so stopping the "container" reaches every process it started
            proc = subprocess.Popen(task["argv"], stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                    cwd=task.get("cwd") or None, env=task.get("env") or None, process_group=0)
            pid = proc.pid
        else:
            # runtime errors go to their own file so the container log holds only the container's output
            errf = cdir / "runtime-create.log"
            with open(errf, "wb") as err:
                rc = subprocess.run(task["create"], stdin=subprocess.DEVNULL, stdout=logf, stderr=err).returncode
            if rc != 0:
                msg = _log_tail(errf) or f"runtime create exited {rc}"
                write_exit(cdir, 128, "CreateContainerError", msg)
                _say(ready_fd, f"error {msg}")
                return 1
            pid = int(Path(task["pid_file"]).read_text().strip())
    except OSError as exc:
        msg = f"could not start {task.get('argv') or task.get('create')}: {exc.strerror or exc}"
        write_exit(cdir, 127, "StartError", msg)
        _say(ready_fd, f"error {msg}")
        return 1
    (cdir / "pid").write_text(str(pid))
    _say(ready_fd, f"ok {pid}")
    logf.close()
    status = _wait_for(pid)
    code = _exit_code(status)
    oom = 0
    if cgroups_path:
        from labkit.oci import cgroups

        oom = cgroups.oom_kills(cgroups_path)
    write_exit(cdir, code, _reason(code, oom), oom=oom)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
