"""Lab 1's exercises: a container is a host process with its own namespaces.

The learner starts containers that outlive the cell (``labkit run -d --name ...`` on labkit's
native runtime); each check finds the container by name and reads the kernel's view of it in
``/proc``: its namespaces, its PID inside, the processes that share its PID namespace.
"""

from __future__ import annotations

import os

from labkit.practice import Exercise, Target, Verdict
from labkit.practice import containers as box

NEEDS = ("root",)


# ---- 1.1: its own hostname, and PID 1 --------------------------------------------------------
def _verify_hostname(t: Target) -> Verdict:
    name = t.name("box")
    found = box.find_local(name)
    if found is None:
        return Verdict.not_yet(box.missing(name, how="start one with labkit run -d"))
    if not found.running:
        return Verdict.not_yet(f"{box.describe(found)}: it must still be running (give it a long sleep)")
    pid = found.status.pid
    nspid = box.proc_status(pid).get("NSpid", "").split()
    if len(nspid) < 2 or nspid[-1] != "1":
        return Verdict.not_yet(f"host PID {pid} is not PID 1 of a PID namespace of its own (NSpid: {nspid})")
    if box.namespace(pid, "uts") == box.namespace(os.getpid(), "uts"):
        return Verdict.not_yet(f"{name} shares the host's UTS namespace, so it cannot have its own hostname")
    seen = found.runtime.exec_sync(found.status.id, ["hostname"]).stdout.decode().strip()
    if seen != "inside":
        return Verdict.not_yet(f"{name} runs with hostname {seen!r}; give it the hostname 'inside' "
                               "(by default labkit names the host after the container)")
    return Verdict.ok(f"{name}: host PID {pid} is PID 1 inside, in UTS namespace "
                      f"{box.namespace(pid, 'uts')} with hostname {seen!r}")


def _solve_hostname(t: Target) -> None:
    box.run_detached(t.name("box"), ["sleep", "600"], hostname="inside")


def _cleanup_hostname(t: Target) -> None:
    box.remove(t.name("box"))


# ---- 1.2: a family of processes in one PID namespace ----------------------------------------
def _verify_family(t: Target) -> Verdict:
    name = t.name("family")
    found = box.find_local(name)
    if found is None:
        return Verdict.not_yet(box.missing(name, how="its command must start three sleep processes"))
    if not found.running:
        return Verdict.not_yet(f"{box.describe(found)}: it must still be running")
    pid = found.status.pid
    ns = box.namespace(pid, "pid")
    members = [p for p in box.processes_in(ns) if p != pid] if ns else []
    sleeps = [p for p in members if box.proc_status(p).get("Name") == "sleep"]
    if len(sleeps) < 3:
        return Verdict.not_yet(f"the host sees {len(members)} other process(es) in {name}'s PID namespace "
                               f"({ns}), {len(sleeps)} of them 'sleep'; start at least three sleep children "
                               "in the background under PID 1")
    inside = [box.proc_status(p).get("NSpid", "").split()[-1] for p in sleeps]
    return Verdict.ok(f"host PIDs {sleeps} are sleep processes in {name}; inside they are PIDs {inside}")


def _solve_family(t: Target) -> None:
    box.run_detached(t.name("family"), ["sh", "-c", "sleep 600 & sleep 600 & sleep 600 & wait"])


def _cleanup_family(t: Target) -> None:
    box.remove(t.name("family"))


# ---- 1.3: kill PID 1 from the host -----------------------------------------------------------
def _verify_killed(t: Target) -> Verdict:
    name = t.name("victim")
    found = box.find_local(name)
    if found is None:
        return Verdict.not_yet(box.missing(name, how="run it with the command sleep 600"))
    st = found.status
    if found.running:
        return Verdict.not_yet(f"{name} still runs as host PID {st.pid}; send that process SIGKILL from the host")
    if st.reason == "OOMKilled":
        return Verdict.not_yet(f"{name} was OOM-killed by its memory limit; kill it yourself with SIGKILL")
    if st.exit_code != 137:
        return Verdict.not_yet(f"{box.describe(found)}; a process killed by SIGKILL exits with 128 + 9 = 137. "
                               "Inside, PID 1 ignores signals it has no handler for, even SIGKILL from its own "
                               "namespace: the kill must come from the host")
    return Verdict.ok(f"{name} exited with 137: PID 1 was killed by SIGKILL from outside its namespace")


def _solve_killed(t: Target) -> None:
    import signal
    import time

    name = t.name("victim")
    box.run_detached(name, ["sleep", "600"])
    pid = box.find_local(name).status.pid  # type: ignore[union-attr]
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if not os.path.exists(f"/proc/{pid}") or box.proc_status(pid).get("State", "").startswith("Z"):
            break
        time.sleep(0.02)


def _cleanup_killed(t: Target) -> None:
    box.remove(t.name("victim"))


EXERCISES = [
    Exercise(
        id="1.1",
        title="Its own hostname, and PID 1",
        statement="""Start a container named `ex-box` from `busybox` that keeps running (`sleep 600`) and
whose hostname is `inside`, on labkit's native runtime, in the background:
`labkit run -d --runtime native ...`. The check finds its process on the host and reads
`/proc/<pid>/status` (is it PID 1 inside?) and `/proc/<pid>/ns/uts` (a UTS namespace of its own?).""",
        verify=_verify_hostname,
        solution=_solve_hostname,
        solution_text="""```bash
labkit run -d --runtime native --name ex-box --hostname inside busybox -- sleep 600
```""",
        cleanup=_cleanup_hostname,
        concept="PID and UTS namespaces",
        difficulty="easy",
        needs=NEEDS,
    ),
    Exercise(
        id="1.2",
        title="A family of processes in one PID namespace",
        statement="""Start a container named `ex-family` whose PID 1 starts **three** `sleep` processes in
the background and then waits for them. The check scans the host's `/proc` for every process
whose `/proc/<pid>/ns/pid` is the container's PID namespace, as `lsns` would, and shows each
one's host PID and its PID inside.""",
        verify=_verify_family,
        solution=_solve_family,
        solution_text="""```bash
labkit run -d --runtime native --name ex-family busybox -- sh -c 'sleep 600 & sleep 600 & sleep 600 & wait'
```""",
        cleanup=_cleanup_family,
        concept="a container is a tree of host processes",
        difficulty="medium",
        needs=NEEDS,
    ),
    Exercise(
        id="1.3",
        title="Kill PID 1 from the host",
        statement="""Start a container named `ex-victim` running `sleep 600`. Find the host PID of its first
process yourself (from `/proc`, or `labkit ps`), and end it with `SIGKILL` **from the host**.
Why would `kill -9 1` typed *inside* the container not work? The check reads the exit status the
runtime recorded.""",
        verify=_verify_killed,
        solution=_solve_killed,
        solution_text="""```bash
labkit run -d --runtime native --name ex-victim busybox -- sleep 600
labkit ps                     # the PID column is the host PID of the container's PID 1
sudo kill -9 <PID>            # from the host; inside, PID 1 ignores even SIGKILL
labkit ps -a                  # exited (137, Error)
```""",
        cleanup=_cleanup_killed,
        concept="PID 1 and signals",
        difficulty="medium",
        needs=NEEDS,
    ),
]
