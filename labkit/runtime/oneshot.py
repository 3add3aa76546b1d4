"""``labkit.runtime.run``: one container, start to exit, through the same CRI calls the kubelet makes.

It creates a pod sandbox, one container in it, starts it, waits, reads its log, and removes
both — always, even on errors — so a lab cell is one line and leaves nothing behind. The result
names the backend that really ran and carries the kernel's verdict (``OOMKilled``).

``labkit run`` (``labkit/cli/container.py``) shares the halves: :func:`limits` and :func:`configs`
describe the container, :func:`start` makes and starts it, :func:`remove` takes it apart; only
how it waits and shows the output differs (a terminal, not a result object). The fast path of
``labkit run --rm`` (``labkit/cli/fastpath/``) is the one other runner, kept apart for speed.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from labkit.errors import LabkitError
from labkit.oci.resources import Resources
from labkit.runtime.base import ContainerConfig, ContainerState, ContainerStatus, PodSandboxConfig, Runtime
from labkit.runtime.podteardown import remove_pod
from labkit.units import parse_cpus, parse_memory


@dataclass
class RunResult:
    runtime: str  # the backend that really ran the container
    runtime_reason: str  # why that backend (default() explains its choice)
    image: str
    image_digest: str
    exit_code: int | None
    reason: str  # Completed, Error, OOMKilled, DeadlineExceeded
    stdout: str  # the container's log: stdout and stderr, as the CRI keeps them
    container_id: str
    host_pid: int | None
    seconds: float
    cleaned_up: bool
    notice: str = ""  # what this backend does not do (the simulated runtime: no isolation, no limits)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def __str__(self) -> str:
        note = f" ({self.notice})" if self.notice else ""
        return (f"[{self.runtime}{note}] exit {self.exit_code} ({self.reason}) in {self.seconds * 1000:.0f} ms, "
                f"image {self.image}@{self.image_digest[:19]}\n{self.stdout}")


def limits(memory: int | str | None = None, cpus: float | str | None = None,
           pids: int | None = None) -> Resources:
    """``--memory``/``--cpus``/``--pids-limit`` as the container's :class:`Resources` (clear
    :class:`~labkit.units.BadQuantity` errors for what cannot be read)."""
    resources = Resources(memory_bytes=parse_memory(memory) if memory is not None else None)
    if cpus is not None:
        resources.cpu_quota_us = int(parse_cpus(cpus) * resources.cpu_period_us)
    if pids is not None:
        resources.pids_limit = int(pids)
    return resources


def configs(image: str, command: list[str], name: str, hostname: str | None, env: dict[str, str],
            resources: Resources, labels: dict[str, str]) -> tuple[PodSandboxConfig, ContainerConfig]:
    """The pod sandbox and container configs of one container run on its own (``labkit run``,
    :func:`run`): the sandbox is named after it, its hostname defaults to that name, and both
    carry ``labels``."""
    sconf = PodSandboxConfig(name=name, hostname=hostname or name, uid=uuid.uuid4().hex, labels=dict(labels))
    cconf = ContainerConfig(name=name, image=image, command=list(command), env=dict(env), resources=resources,
                            labels=dict(labels))
    return sconf, cconf


def start(rt: Runtime, sconf: PodSandboxConfig, cconf: ContainerConfig) -> tuple[str, str]:
    """Make the sandbox and the container and start it: ``(sandbox id, container id)``.

    When a step fails, what the earlier steps made is removed before the error goes up, so the
    caller has nothing to clean and the error it shows is the first one.
    """
    sid = cid = None
    try:
        sid = rt.run_pod_sandbox(sconf)
        cid = rt.create_container(sid, cconf, sconf)
        rt.start_container(cid)
    except BaseException:
        try:
            remove(rt, sid, cid)
        except LabkitError:
            pass  # the first error is the one to report; `labkit gc` finds the rest
        raise
    return sid, cid


def remove(rt: Runtime, sid: str | None, cid: str | None) -> None:
    """Remove the container and its sandbox (it has exited, or never started); raises the first
    :class:`~labkit.errors.LabkitError` after trying every step."""
    remove_pod(rt, sid, [cid] if cid else [], stop=False)


def _wait(rt: Runtime, cid: str, timeout: float | None) -> ContainerStatus:
    waiter = getattr(rt, "wait", None)
    if waiter is not None:
        return waiter(cid, timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        st = rt.container_status(cid)
        if st.state == ContainerState.EXITED or (deadline and time.monotonic() > deadline):
            return st
        time.sleep(0.01)


def run(image: str, cmd: list[str] | str | None = None, runtime: str | Runtime | None = None,
        memory: int | str | None = None, cpus: float | str | None = None, pids: int | None = None,
        hostname: str | None = None, name: str | None = None, env: dict[str, str] | None = None,
        timeout: float | None = 60.0) -> RunResult:
    """Run ``cmd`` in ``image`` on ``runtime`` (a name, a Runtime, or None for the host's best)."""
    from labkit.runtime import selection

    if isinstance(cmd, str):
        cmd = ["sh", "-c", cmd]
    if isinstance(runtime, Runtime):
        rt, why, owned = runtime, getattr(runtime, "reason", f"{runtime.name}: chosen by the caller"), False
    elif runtime is None:
        rt = selection.default()
        why, owned = rt.reason, True  # type: ignore[attr-defined]
    else:
        rt, why, owned = selection.get(runtime), f"{runtime}: asked for by name", True
    short = name or f"run-{uuid.uuid4().hex[:6]}"
    sconf, cconf = configs(image, list(cmd or []), short, hostname, dict(env or {}), limits(memory, cpus, pids),
                           {"labkit.io/oneshot": "true"})
    t0 = time.perf_counter()
    sid = cid = None
    try:
        sid, cid = start(rt, sconf, cconf)
        st = _wait(rt, cid, timeout)
        reason = st.reason
        if st.state != ContainerState.EXITED:
            rt.stop_container(cid, timeout=1.0)
            st = rt.container_status(cid)
            reason = "DeadlineExceeded"
        out = rt.logs(cid).decode(errors="replace")
        seconds = time.perf_counter() - t0
        result = RunResult(runtime=rt.name, runtime_reason=why, image=image, image_digest=st.image_ref,
                           exit_code=st.exit_code, reason=reason or st.message, stdout=out, container_id=cid,
                           host_pid=st.pid, seconds=seconds, cleaned_up=False,
                           notice=getattr(rt, "notice", ""))
    finally:
        cleaned = True
        if sid is not None:
            try:
                remove(rt, sid, cid)
            except LabkitError:
                cleaned = False
        if owned:
            rt.close()
    result.cleaned_up = cleaned
    return result
