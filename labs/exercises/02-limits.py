"""Lab 2's exercises: cgroup limits, and the kernel's own evidence that they bit.

Each check finds the learner's container by name and reads its cgroup's files (memory, cpu, pids
controllers), the numbers the kernel keeps, not what the learner asked for.
"""

from __future__ import annotations

from pathlib import Path

from labkit.practice import Exercise, Target, Verdict
from labkit.practice import containers as box

NEEDS = ("root",)
MiB = 1 << 20


# ---- 2.1: OOM-killed, and the evidence -------------------------------------------------------
def _verify_oom(t: Target) -> Verdict:
    from labkit.oci import cgroups

    name = t.name("oom")
    found = box.find_local(name)
    if found is None:
        return Verdict.not_yet(box.missing(name, how="give it a small --memory and a command that needs more"))
    st = found.status
    if found.running:
        return Verdict.not_yet(f"{name} is still running; its command must use more memory than its limit")
    if st.reason != "OOMKilled":
        return Verdict.not_yet(f"{box.describe(found)}: it ended, but not by the OOM killer. Use a limit below "
                               "what the command needs (dd with bs=100M needs a 100 MiB buffer)")
    evidence = f"exit {st.exit_code}, reason OOMKilled"
    path = found.cgroup_path()
    if path and cgroups.Cgroup(path).exists():
        group = cgroups.Cgroup(path)
        counters = group.oom_counters()
        if counters.get("oom_kill", 0) < 1:
            return Verdict.not_yet(f"{name}'s cgroup {path} counts no OOM kill ({counters})")
        limit = group.memory_limit()
        evidence += f"; cgroup {path}: oom_kill={counters['oom_kill']}, limit {limit // MiB if limit else '?'} MiB"
    return Verdict.ok(f"{name} was killed by the kernel's OOM killer ({evidence})")


def _solve_oom(t: Target) -> None:
    name = t.name("oom")
    box.run_detached(name, ["dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1"], memory="32m")


def _cleanup_oom(t: Target) -> None:
    box.remove(t.name("oom"))


# ---- 2.2: a CPU quota, and the periods it throttled ---------------------------------------------
def _cpu_quota(d: Path) -> float | None:
    if (d / "cpu.max").exists():
        quota, _, period = (d / "cpu.max").read_text().partition(" ")
        return None if quota == "max" else int(quota) / int(period)
    quota = int((d / "cpu.cfs_quota_us").read_text())
    return None if quota < 0 else quota / int((d / "cpu.cfs_period_us").read_text())


def _verify_cpu(t: Target) -> Verdict:
    name = t.name("spin")
    found = box.find_local(name)
    if found is None:
        return Verdict.not_yet(box.missing(name, how="run a busy loop with a CPU limit (--cpus)"))
    if not found.running:
        return Verdict.not_yet(f"{box.describe(found)}: the busy loop must keep running")
    d = box.cgroup_dir(found.status.pid, "cpu")
    if d is None:
        return Verdict.not_yet(f"{name}'s process is in no cpu cgroup this check can read")
    cores = _cpu_quota(d)
    if cores is None or cores > 0.5:
        return Verdict.not_yet(f"{d} allows {'no limit' if cores is None else f'{cores:g} cores'}; "
                               "limit it to half a core or less")
    stat = box.read_counters(d / "cpu.stat")
    if stat.get("nr_throttled", 0) < 1:
        return Verdict.not_yet(f"{d}/cpu.stat shows no throttled period yet ({stat}); is the loop busy? "
                               "(wait a second and check again)")
    return Verdict.ok(f"{name} may use {cores:g} cores; the kernel throttled it in {stat['nr_throttled']} "
                      f"of {stat.get('nr_periods', '?')} periods ({d}/cpu.stat)")


def _solve_cpu(t: Target) -> None:
    box.run_detached(t.name("spin"), ["sh", "-c", "while :; do :; done"], cpus="0.25")


def _cleanup_cpu(t: Target) -> None:
    box.remove(t.name("spin"))


# ---- 2.3: a pids limit that refuses forks ---------------------------------------------------------
def _verify_pids(t: Target) -> Verdict:
    name = t.name("forks")
    found = box.find_local(name)
    if found is None:
        return Verdict.not_yet(box.missing(name, how="give it --pids-limit and a command that starts more"))
    if not found.running:
        return Verdict.not_yet(f"{box.describe(found)}: it must still be running. A shell whose fork fails gives "
                               "up and exits: start the processes in a subshell, ( ... ), then sleep")
    d = box.cgroup_dir(found.status.pid, "pids")
    if d is None:
        return Verdict.not_yet(f"{name}'s process is in no pids cgroup this check can read")
    limit = (d / "pids.max").read_text().strip()
    if limit == "max" or int(limit) > 10:
        return Verdict.not_yet(f"{d}/pids.max is {limit}; set a limit of 10 or fewer processes")
    refused = box.read_counters(d / "pids.events").get("max", 0)
    if refused < 1:
        return Verdict.not_yet(f"{d}/pids.events counts no refused fork yet; start more processes than "
                               f"the limit of {limit}")
    current = (d / "pids.current").read_text().strip()
    return Verdict.ok(f"{name}: pids.max {limit}, pids.current {current}; the kernel refused {refused} fork(s) "
                      "(pids.events max)")


def _solve_pids(t: Target) -> None:
    box.run_detached(t.name("forks"), ["sh", "-c", "(for i in 1 2 3 4 5 6 7 8; do sleep 600 & done); sleep 600"],
                     pids=5)


def _cleanup_pids(t: Target) -> None:
    box.remove(t.name("forks"))


EXERCISES = [
    Exercise(
        id="2.1",
        title="Get a container OOM-killed, and find the evidence",
        statement="""Run a container named `ex-oom` (no `--rm`, so its record stays) whose memory limit is
smaller than what its command needs, so that the kernel's OOM killer ends it. `dd` with a
`bs=100M` buffer needs 100 MiB. Afterwards, find the evidence yourself: `labkit ps -a` shows the
reason, and the container's cgroup counts the kill (`memory.oom_control` on cgroup v1,
`memory.events` on v2).""",
        verify=_verify_oom,
        solution=_solve_oom,
        solution_text="""```bash
labkit run -d --runtime native --name ex-oom --memory 32m busybox -- dd if=/dev/zero of=/dev/null bs=100M count=1
labkit ps -a                                           # exited (137, OOMKilled)
cat /sys/fs/cgroup/memory/labkit/<id>/memory.oom_control   # oom_kill 1
```""",
        cleanup=_cleanup_oom,
        concept="memory limits and the OOM killer",
        difficulty="easy",
        needs=NEEDS,
    ),
    Exercise(
        id="2.2",
        title="Throttle a busy loop",
        statement="""Run a container named `ex-spin` whose command is a busy loop (`while :; do :; done`)
and limit it to **half a core or less**. The check reads its cgroup's quota
(`cpu.cfs_quota_us`/`cpu.cfs_period_us`, or `cpu.max`) and `cpu.stat`, where the kernel counts
the periods in which it stopped the loop. Stop it afterwards: `labkit stop -t 0 ex-spin`.""",
        verify=_verify_cpu,
        solution=_solve_cpu,
        solution_text="""```bash
labkit run -d --runtime native --name ex-spin --cpus 0.25 busybox -- sh -c 'while :; do :; done'
```""",
        cleanup=_cleanup_cpu,
        concept="CPU quota (CFS bandwidth control)",
        difficulty="medium",
        needs=NEEDS,
        timeout=30.0,
    ),
    Exercise(
        id="2.3",
        title="A fork bomb that cannot go off",
        statement="""Run a container named `ex-forks` limited to **10 processes or fewer**, whose command
tries to start more (eight `sleep 600 &` in a loop, say) and then keeps running: a shell whose
fork fails exits, so run the loop in a subshell, `( ... )`. The check reads
`pids.max`, `pids.current` and `pids.events`, where the kernel counts every fork it refused.""",
        verify=_verify_pids,
        solution=_solve_pids,
        solution_text="""```bash
labkit run -d --runtime native --name ex-forks --pids-limit 5 busybox -- \\
    sh -c '(for i in 1 2 3 4 5 6 7 8; do sleep 600 & done); sleep 600'
```""",
        cleanup=_cleanup_pids,
        concept="the pids controller",
        difficulty="medium",
        needs=NEEDS,
    ),
]
