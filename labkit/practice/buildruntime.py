"""The "write a container runtime" track: run a learner's runtime module on a real container.

The learner writes one function per step in a module of their own (``labs/tracks/runtime/
skeleton.py`` is where it starts). This runner does the plumbing around those functions, the
forks, pipes and clean-up that every runtime needs but that teach nothing new, and calls the
learner's functions in the order a runtime does::

    runner (host) --fork--> middle: step 1 create_namespaces()   (unshare)
                              --fork--> PID 1: step 2 set_hostname, 3 mount_rootfs, 4 pivot_into,
                                               5 mount_proc ... waits ...
    runner (host): step 6 join_cgroup(dir, pid), step 7 set_memory_limit(dir, bytes) ... go!
                                        PID 1: step 8 drop_capabilities, then exec the program

It runs as its own process (``python -m labkit.practice.buildruntime``), so a learner's mistake
never touches the notebook's own process. :func:`start` runs it and hands back the container's
host PID, so a check can read the kernel's view of it (``/proc/PID/ns``, ``mountinfo``,
``cgroup``, ``status``). Guards refuse what would change the host itself: setting a hostname
without a UTS namespace of its own, mounting or pivoting without a mount namespace of its own.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

#: (function the learner writes, what the step does), in the order the runner calls them
STEPS: list[tuple[str, str]] = [
    ("create_namespaces", "fork into new namespaces"),
    ("set_hostname", "set the hostname"),
    ("mount_rootfs", "mount the image's layers with overlayfs"),
    ("pivot_into", "pivot_root into the image"),
    ("mount_proc", "mount /proc"),
    ("join_cgroup", "join a cgroup"),
    ("set_memory_limit", "set a memory limit"),
    ("drop_capabilities", "drop capabilities"),
]
MEMORY_LIMIT = 64 * 2**20


class RuntimeStepError(Exception):
    """The learner's runtime stopped at a step; the message names the step and what went wrong."""


def load_module(path: str | os.PathLike[str]) -> ModuleType:
    """Import the learner's file (a fresh module object each time, so edits are seen)."""
    spec = importlib.util.spec_from_file_location("learner_runtime", path)
    if spec is None or spec.loader is None:
        raise RuntimeStepError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def keep_capabilities() -> list[str]:
    """The capabilities a container keeps: Docker's and runc's default list."""
    from labkit.oci.capabilities import DEFAULT_CAPABILITIES

    return list(DEFAULT_CAPABILITIES)


def memory_dir(name: str) -> tuple[Any, Path]:
    """labkit's cgroup ``/labkit/NAME`` (created), and the directory of its memory controller."""
    from labkit.oci import cgroups as cg

    group = cg.Cgroup(f"/labkit/{name}")
    group.create()
    d = group.v1.get("memory") or group.v2
    if d is None:
        group.destroy()
        raise RuntimeStepError("this host has no memory cgroup controller; steps 6 and 7 cannot run here")
    return group, d


# --------------------------------------------------------------------------- the runner process
def _say(fd: int, kind: str, text: str = "") -> None:
    try:
        os.write(fd, (kind + text.replace("\n", " ")[:2000] + "\n").encode())
    except OSError:
        pass


def _failed(n: int, err: BaseException) -> str:
    fn = STEPS[n - 1][0]
    if isinstance(err, NotImplementedError):
        return f"step {n}, {fn}(), is not written yet ({err or 'NotImplementedError'})"
    return f"step {n}, {fn}(), failed: {type(err).__name__}: {err}"


def _own_ns(kind: str, host: dict[str, int]) -> bool:
    return os.stat(f"/proc/self/ns/{kind}").st_ino != host[kind]


def _container(mod: ModuleType, steps: int, name: str, paths: dict[str, Any], host: dict[str, int],
               sync_w: int, go_r: int, argv: list[str]) -> None:
    """PID 1 of the container: steps 2-5, wait for the host's steps 6-7, step 8, exec."""
    from labkit.oci import syscalls as sc

    n = 1
    try:
        sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
        own = {kind: _own_ns(kind, host) for kind in ("mnt", "uts")}  # before /proc is the image's
        if own["mnt"]:
            # the runner's part, as in runc: nothing mounted in here propagates back to the host
            sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
        if steps >= 2:
            n = 2
            if not own["uts"]:
                raise RuntimeStepError("the process has no UTS namespace of its own, so this would rename the "
                                       "host: add CLONE_NEWUTS in step 1")
            mod.set_hostname(name)
        for n, fn in ((3, "mount_rootfs"), (4, "pivot_into"), (5, "mount_proc")):
            if steps < n:
                break
            if not own["mnt"]:
                raise RuntimeStepError("the process has no mount namespace of its own, so this would change the "
                                       "host's mounts: add CLONE_NEWNS in step 1")
            if n == 3:
                mod.mount_rootfs(paths["lowerdirs"], paths["upperdir"], paths["workdir"], paths["rootfs"])
            elif n == 4:
                mod.pivot_into(paths["rootfs"])
            else:
                getattr(mod, fn)()
        n = 0
        _say(sync_w, "S")
        if os.read(go_r, 1) != b"1":
            os._exit(1)
        if steps >= 8:
            n = 8
            mod.drop_capabilities(keep_capabilities())
        n = 0
        for target, fd in enumerate(paths["stdio"]):  # opened on the host, before pivot_root
            os.dup2(fd, target)
        os.execvp(argv[0], argv)
    except BaseException as err:  # noqa: BLE001 - report every failure, never unwind into the runner
        _say(sync_w, "E", _failed(n, err) if n else f"the program {argv[0]!r} could not start: {err}")
    os._exit(1)


def _middle(mod: ModuleType, steps: int, name: str, paths: dict[str, Any], host: dict[str, int],
            sync_w: int, go_r: int, argv: list[str]) -> None:
    """Step 1, then fork the container's PID 1 and wait for it."""
    from labkit.oci import syscalls as sc

    try:
        sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
        mod.create_namespaces()
    except BaseException as err:  # noqa: BLE001
        _say(sync_w, "E", _failed(1, err))
        os._exit(1)
    child = os.fork()
    if child == 0:
        _container(mod, steps, name, paths, host, sync_w, go_r, argv)
    _say(sync_w, "P", str(child))
    os.close(sync_w)
    os.close(go_r)
    while True:
        try:
            os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            break
    os._exit(0)


def run(module: str, steps: int, name: str, scratch: Path, argv: list[str]) -> int:
    """Start the container, print one JSON line (its PID and paths, or the error), wait for stdin EOF."""
    from labkit.images import ImageStore

    report: dict[str, Any] = {"steps": steps}
    group = None
    middle = pid = None
    try:
        mod = load_module(module)
        missing = [f"{fn}()" for fn, _ in STEPS[:steps] if not callable(getattr(mod, fn, None))]
        if missing:
            raise RuntimeStepError(f"{module} has no {', '.join(missing)}; start again from the skeleton")
        shutil.rmtree(scratch, ignore_errors=True)  # what a killed run left: overlayfs wants an empty workdir
        store = ImageStore()
        image = store.ensure("busybox")
        paths = {"lowerdirs": [str(store.layer_dir(x)) for x in reversed(image.layers)],
                 "upperdir": str(scratch / "upper"), "workdir": str(scratch / "work"),
                 "rootfs": str(scratch / "rootfs")}
        for key in ("upperdir", "workdir", "rootfs"):
            Path(paths[key]).mkdir(parents=True, exist_ok=True)
        report.update(paths)
        report["console"] = str(scratch / "console")
        console = os.open(scratch / "console", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        paths["stdio"] = [os.open(os.devnull, os.O_RDONLY), console, console]
        if steps >= 6:
            group, mem = memory_dir(name)
            report["cgroup"] = group.path
            report["memory_dir"] = str(mem)
        host = {k: os.stat(f"/proc/self/ns/{k}").st_ino for k in ("mnt", "uts", "pid", "ipc", "net")}
        sync_r, sync_w = os.pipe()
        go_r, go_w = os.pipe()
        middle = os.fork()
        if middle == 0:
            os.close(sync_r)
            os.close(go_w)
            _middle(mod, steps, name, paths, host, sync_w, go_r, argv)
        os.close(sync_w)
        os.close(go_r)
        buf = b""
        waiting = False
        while True:
            chunk = os.read(sync_r, 4096)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                kind, text = chr(line[0]), line[1:].decode(errors="replace")
                if kind == "P":
                    pid = int(text)
                    report["pid"] = pid
                elif kind == "E":
                    raise RuntimeStepError(text)
                elif kind == "S":
                    waiting = True
                if waiting and pid:  # PID 1 waits, and its host PID is known: the host's steps
                    waiting = False
                    n = 0
                    try:
                        if steps >= 6:
                            n = 6
                            mod.join_cgroup(str(mem), pid)
                        if steps >= 7:
                            n = 7
                            mod.set_memory_limit(str(mem), MEMORY_LIMIT)
                            report["memory_limit"] = MEMORY_LIMIT
                    except Exception as err:  # noqa: BLE001
                        raise RuntimeStepError(_failed(n, err)) from err
                    os.write(go_w, b"1")
        os.close(sync_r)
        os.close(go_w)
        if not pid:
            raise RuntimeStepError("the container's process never started")
        print(json.dumps(report), flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        sys.stdin.read()  # the caller closes our stdin (or sends SIGTERM) to stop the container
        return 0
    except (RuntimeStepError, SyntaxError, ImportError) as err:
        report["error"] = str(err) if isinstance(err, RuntimeStepError) else f"{module} does not import: {err}"
        print(json.dumps(report), flush=True)
        return 1
    finally:
        for p in (pid, middle):
            if p:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if middle:
            try:
                os.waitpid(middle, 0)
            except ChildProcessError:
                pass
        if group is not None:
            group.destroy()
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m labkit.practice.buildruntime",
                                description="Run a learner's runtime module (steps 1..N) on a real container.")
    p.add_argument("--module", required=True, help="the learner's runtime.py")
    p.add_argument("--steps", type=int, default=len(STEPS), help="run steps 1..N (default: all)")
    p.add_argument("--name", required=True, help="container name: hostname and cgroup /labkit/NAME")
    p.add_argument("--scratch", required=True, help="a new folder for the overlay's upper, work and root dirs")
    p.add_argument("command", nargs="+", help="the program to run, after --")
    a = p.parse_args(argv)
    if not 1 <= a.steps <= len(STEPS):
        p.error(f"--steps must be 1 to {len(STEPS)}")
    from labkit.oci import syscalls as sc

    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGTERM)  # the caller died: stop the container, clean up
    return run(a.module, a.steps, a.name, Path(a.scratch), a.command)


# --------------------------------------------------------------------------- the caller's side
@dataclass
class Box:
    """A container the learner's runtime started: read the kernel's view of ``pid``, then stop()."""

    pid: int
    info: dict[str, Any]
    proc: subprocess.Popen

    def finish(self, timeout: float = 20.0) -> str:
        """Wait until the container's program has exited; what it wrote to stdout and stderr."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _running(self.pid):
            time.sleep(0.02)
        return Path(self.info["console"]).read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()  # type: ignore[union-attr]
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> Box:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(module: str | os.PathLike[str], steps: int, name: str, scratch: str | os.PathLike[str],
          argv: list[str] | None = None, timeout: float = 30.0) -> Box:
    """Run steps 1..``steps`` of the learner's ``module``; the running container, or RuntimeStepError."""
    if os.geteuid() != 0:
        raise RuntimeStepError("a container runtime needs root (namespaces, mounts, cgroups): run this as root")
    cmd = [sys.executable, "-m", "labkit.practice.buildruntime", "--module", str(module), "--steps", str(steps),
           "--name", name, "--scratch", str(scratch), "--", *(argv or ["sleep", "600"])]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else b""
    try:
        info = json.loads(line)
    except ValueError:
        proc.kill()
        _, err = proc.communicate(timeout=5)
        raise RuntimeStepError("the runtime did not start the container"
                               + (f": {err.decode(errors='replace').strip()[-600:]}" if err else
                                  f" within {timeout:.0f} s")) from None
    if "error" in info:
        proc.wait(10)
        raise RuntimeStepError(info["error"])
    box = Box(int(info["pid"]), info, proc)
    deadline = time.monotonic() + 5  # the program has exec'd once the runner speaks; wait for /proc to say so
    while time.monotonic() < deadline and not _execd(box.pid, argv or ["sleep"]) and _running(box.pid):
        time.sleep(0.01)
    return box


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _execd(pid: int, argv: list[str]) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == Path(argv[0]).name[:15]
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())


# --------------------------------------------------------------------------- labkit's own version
def excerpt(obj: Any, first: str, last: str | None = None) -> str:
    """The lines of ``obj``'s source from the first line holding ``first`` to the next holding
    ``last`` (or the whole source): read from labkit's code at run time, never a copy."""
    import inspect
    import textwrap

    lines = inspect.getsource(obj).splitlines()
    start = next(i for i, line in enumerate(lines) if first in line)
    end = len(lines) - 1 if last is None else next(i for i in range(start, len(lines)) if last in lines[i])
    where = f"# {obj.__module__}.{obj.__qualname__}, line {inspect.getsourcelines(obj)[1] + start}"
    return where + "\n" + textwrap.dedent("\n".join(lines[start:end + 1]))


def labkit_source(step: int) -> str:
    """Where labkit's own runtime (``labkit.oci.native``) does what step ``step`` asks of the learner."""
    from labkit.images import rootfs
    from labkit.oci import cgroups, spec
    from labkit.oci.native import init, start

    parts = {
        1: [excerpt(start.ProcessStart._fork_into_pid_ns, "if pid_ns is None", "return child"),
            excerpt(init.container_init, "# namespaces: join", "sc.unshare(new_flags)")],
        2: [excerpt(init.container_init, 'if config.get("hostname")', "sc.sethostname")],
        3: [excerpt(rootfs.mount_overlay, "upper, work =", 'syscalls.mount("overlay"')],
        4: [excerpt(init.container_init, "sc.mount(None, \"/\", None, sc.MS_REC | prop)",
                    "sc.mount(rootfs, rootfs"),
            excerpt(init.container_init, "os.chdir(rootfs)", 'os.chdir("/")')],
        5: [excerpt(spec.default_mounts, '"destination": "/proc"', '"destination": "/proc"'),
            excerpt(init._mount_one, 'sc.mount(m.get("source") or kind', 'sc.mount(m.get("source") or kind')],
        6: [excerpt(cgroups.Cgroup.join_files, "out = []", "return out"),
            excerpt(init.container_init, "# cgroups: join", "os.close(fd)")],
        7: [excerpt(cgroups.Cgroup.set_resources, 'mem = (res.get("memory")', 'memory.max", str(int(mem)))')],
        8: [excerpt(init._drop_capabilities, "def _drop_capabilities")],
    }
    return "\n\n".join(parts[step])
