"""One pod on one node: bring the runtime in line with the pod spec, and report back.

The steps follow the real kubelet's SyncPod: sandbox → network (CNI hook) → volumes (CSI hook)
→ init containers in order → devices (device plugin hook) → app containers; then restart
exited containers per ``restartPolicy`` with exponential back-off, run probes, and write the
pod's status. On deletion it stops the containers within the grace period, tears the sandbox
down and confirms the deletion to the apiserver.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from labkit.client.events import now_iso
from labkit.client.rest import ApiError
from labkit.errors import LabkitError
from labkit.node.kubelet import containers as C
from labkit.node.kubelet import probes, volumes
from labkit.node.kubelet.nodecontext import NodeContext
from labkit.node.kubelet.plugins import PluginError
from labkit.node.kubelet.podcleanup import cleanup_pod
from labkit.runtime.base import ContainerState, ContainerStatus, PodSandboxStatus
from labkit.runtime.podteardown import remove_pod

log = logging.getLogger(__name__)


@dataclass
class PodRecord:
    key: str
    pod: dict
    sandbox: PodSandboxStatus | None = None
    ip: str | None = None
    volume_paths: dict[str, str] = field(default_factory=dict)
    current: dict[str, ContainerStatus] = field(default_factory=dict)
    last: dict[str, ContainerStatus] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    backoff: dict[str, float] = field(default_factory=dict)
    backoff_until: dict[str, float] = field(default_factory=dict)
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)
    probe_state: dict[tuple[str, str], probes.ProbeState] = field(default_factory=dict)
    ready: dict[str, bool] = field(default_factory=dict)
    start_time: str | None = None
    conditions: dict[str, dict] = field(default_factory=dict)
    last_sent: dict | None = None
    deleted: bool = False
    done: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    pulled: set[str] = field(default_factory=set)
    #: every container runs and nothing is pending: the worker sleeps until the node's relist
    #: (PLEG) or the API wakes it, instead of polling the runtime itself
    steady: bool = False

    @property
    def uid(self) -> str:
        return self.pod["metadata"].get("uid", "")

    @property
    def spec(self) -> dict:
        return self.pod.get("spec") or {}


class PodWorker:
    def __init__(self, node: NodeContext, rec: PodRecord):
        self.k = node
        self.rec = rec
        #: containers whose status was read during this sync (just started): refresh() skips them
        self._fresh: set[str] = set()

    # ------------------------------------------------------------------ loop
    async def run(self) -> None:
        rec = self.rec
        while True:
            rec.wake.clear()
            try:
                if rec.deleted or rec.pod["metadata"].get("deletionTimestamp"):
                    await self.terminate()
                    return
                if not rec.done:
                    await self.sync()
                    await self.report()
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                log.info("%s: pod %s: API error %s", self.k.node_name, rec.key, exc)
            except Exception:
                log.exception("%s: syncing pod %s failed", self.k.node_name, rec.key)
            rec.steady = self.is_steady()
            timeout = None if (rec.done or self.k.hollow or rec.steady) else self.k.pod_poll
            try:
                await asyncio.wait_for(rec.wake.wait(), timeout)
            except TimeoutError:
                pass

    def is_steady(self) -> bool:
        """Nothing for a timer to do: a sandbox, every container running, no probes, no back-off."""
        rec = self.rec
        if rec.done or rec.deleted or rec.sandbox is None or rec.waiting or rec.backoff_until:
            return False
        for c in rec.spec.get("containers") or []:
            cur = rec.current.get(c["name"])
            if cur is None or cur.state != ContainerState.RUNNING or c.get("readinessProbe") or c.get("livenessProbe"):
                return False
        for c in rec.spec.get("initContainers") or []:
            cur = rec.current.get(c["name"])
            if cur is None or cur.state != ContainerState.EXITED or cur.exit_code != 0:
                return False
        return True

    def event(self, type_: str, reason: str, message: str) -> None:
        self.k.events.event(self.rec.pod, type_, reason, message)

    async def rt(self, fn, *args, **kw):
        return await self.k.call_runtime(fn, *args, **kw)

    async def get_configmap(self, name: str, namespace: str) -> dict:
        return await self.k.client.get("configmaps", name, namespace)

    # ------------------------------------------------------------------ sync
    async def sync(self) -> None:
        rec, k = self.rec, self.k
        self._fresh.clear()
        if rec.sandbox is None and not await self.ensure_sandbox():
            return
        await self.refresh()
        if not await self.run_init_containers():
            return
        policy = rec.spec.get("restartPolicy", "Always")
        for c in rec.spec.get("containers") or []:
            name = c["name"]
            cur = rec.current.get(name)
            if cur is None:
                await self.start_container(c)
            elif cur.state == ContainerState.EXITED:
                if self._restarts(policy, "containers", cur):
                    await self.restart_container(c, cur)
            elif cur.state == ContainerState.RUNNING and not k.hollow:
                await self.run_probes(c, cur)
        await self.refresh()

    async def ensure_sandbox(self) -> bool:
        rec, k = self.rec, self.k
        existing = k.adopt_sandbox(rec.uid)
        try:
            if existing is not None:
                rec.sandbox = existing
                rec.ip = existing.ip
                for cs in await self.rt(k.runtime.list_containers, existing.id):
                    name = cs.labels.get(C.CONTAINER_NAME) or cs.name
                    if name and (name not in rec.current or cs.created_at > rec.current[name].created_at):
                        rec.current[name] = cs
                        rec.restarts[name] = C.restart_count(cs)
            else:
                cfg = C.sandbox_config(rec.pod, k.owner)
                # the runtime's name only labels what this sandbox runs: ask it alongside, not first
                sid, _ = await asyncio.gather(self.rt(k.runtime.run_pod_sandbox, cfg), k.sync_runtime_version())
                rec.sandbox = await self.rt(k.runtime.pod_sandbox_status, sid)
            rec.start_time = rec.start_time or (rec.pod.get("status") or {}).get("startTime") or now_iso()
        except LabkitError as exc:
            self.event("Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {exc}")
            rec.waiting = {c["name"]: ("ContainerCreating", str(exc)) for c in rec.spec.get("containers") or []}
            await self.report()
            return False
        # the image checks do not depend on the network: run them while CNI sets the sandbox up
        images = {c.get("image", "") for c in (rec.spec.get("initContainers") or []) + (rec.spec.get("containers") or [])}
        pulls = asyncio.gather(*(self.pull(img) for img in sorted(images) if img), return_exceptions=True)
        try:
            ip = await self.rt(k.plugins.network.setup_pod, rec.pod, rec.sandbox)
            rec.ip = ip or rec.sandbox.ip or rec.ip
        except PluginError as exc:
            self.event("Warning", exc.reason or "FailedCreatePodSandBox", f"network: {exc}")
            await pulls
            await self._drop_sandbox()
            return False
        finally:
            if not pulls.done():
                await pulls
        try:
            paths = await volumes.prepare_builtin(rec.pod, k.state, self.get_configmap)
            paths.update(await self.rt(k.plugins.volumes.mount_pod_volumes, rec.pod))
            rec.volume_paths = paths
        except (PluginError, ApiError, OSError) as exc:
            reason = getattr(exc, "reason", "") if isinstance(exc, PluginError) else "FailedMount"
            self.event("Warning", reason or "FailedMount", f"MountVolume failed: {exc}")
            rec.waiting = {c["name"]: ("ContainerCreating", f"volumes: {exc}") for c in rec.spec.get("containers") or []}
            await self._drop_sandbox()
            await self.report()
            return False
        return True

    async def _drop_sandbox(self) -> None:
        rec, k = self.rec, self.k
        if rec.sandbox is None:
            return
        try:
            await self.rt(k.plugins.network.teardown_pod, rec.pod, rec.sandbox)
        except Exception:  # noqa: BLE001 - best effort while giving up on this sandbox
            pass
        try:
            await self.rt(remove_pod, k.runtime, rec.sandbox.id, [])  # no container was created in it
        except LabkitError:
            pass
        rec.sandbox = None

    async def refresh(self) -> None:
        rec = self.rec
        for name, cs in list(rec.current.items()):
            if cs.state == ContainerState.EXITED or cs.id in self._fresh:
                continue
            try:
                rec.current[name] = await self.rt(self.k.runtime.container_status, cs.id)
            except LabkitError:
                continue

    async def run_init_containers(self) -> bool:
        """Run init containers one after another; True once all have succeeded."""
        rec = self.rec
        for c in rec.spec.get("initContainers") or []:
            cur = rec.current.get(c["name"])
            if cur is None:
                await self.start_container(c)
                return False
            if cur.state != ContainerState.EXITED:
                return False
            if cur.exit_code != 0:
                if self._restarts(rec.spec.get("restartPolicy", "Always"), "initContainers", cur):
                    await self.restart_container(c, cur)
                return False
        return True

    async def pull(self, image: str) -> bool:
        rec, k = self.rec, self.k
        if image in rec.pulled:
            return True
        try:
            have = await self.rt(k.runtime.image_status, image)
            if have is None:
                self.event("Normal", "Pulling", f'Pulling image "{image}"')
                t0 = time.perf_counter()
                info = await self.rt(k.runtime.pull_image, image)
                self.event("Normal", "Pulled", f'Successfully pulled image "{image}" in '
                           f"{(time.perf_counter() - t0) * 1000:.0f}ms (digest {info.digest or 'n/a'})")
            else:
                self.event("Normal", "Pulled", f'Container image "{image}" already present on machine')
        except LabkitError as exc:
            self.event("Warning", "Failed", f'Failed to pull image "{image}": {exc}')
            return False
        rec.pulled.add(image)
        return True

    async def start_container(self, c: dict, restart: int = 0) -> None:
        rec, k = self.rec, self.k
        name = c["name"]
        if not await self.pull(c.get("image", "")):
            rec.waiting[name] = ("ErrImagePull", f"cannot pull {c.get('image')}")
            return
        try:
            alloc = await self.rt(k.plugins.devices.allocate, rec.pod, c)
        except PluginError as exc:
            self.event("Warning", exc.reason or "UnexpectedAdmissionError", str(exc))
            rec.waiting[name] = ("CreateContainerError", str(exc))
            return
        mounts = volumes.container_mounts(c, rec.volume_paths) + list(alloc.mounts)
        env = {**C.env_of(c, rec.pod, rec.ip, k.node_name), **alloc.env}
        cfg = C.container_config(c, rec.pod, restart, mounts, env, k.owner)
        cfg.devices = list(alloc.devices)
        try:
            cid = await self.rt(k.runtime.create_container, rec.sandbox.id, cfg,
                                C.sandbox_config(rec.pod, k.owner))
            self.event("Normal", "Created", f"Created container {name}")
            await self.rt(k.runtime.start_container, cid)
            self.event("Normal", "Started", f"Started container {name}")
            rec.current[name] = await self.rt(k.runtime.container_status, cid)
            self._fresh.add(cid)
            rec.restarts[name] = restart
            rec.waiting.pop(name, None)
        except LabkitError as exc:
            self.event("Warning", "Failed", f"Error: {exc}")
            rec.waiting[name] = ("CreateContainerError", str(exc))

    async def restart_container(self, c: dict, cur: ContainerStatus) -> None:
        rec, k = self.rec, self.k
        name = c["name"]
        now = time.monotonic()
        until = rec.backoff_until.get(name)
        if until is None:
            delay = rec.backoff.get(name, 0.0)
            delay = k.backoff_base if delay == 0 else min(delay * 2, k.backoff_max)
            rec.backoff[name] = delay
            if cur.finished_at and time.time() - cur.finished_at > 2 * k.backoff_max:
                rec.backoff[name] = delay = k.backoff_base  # it ran long enough: forgive earlier crashes
            rec.backoff_until[name] = until = now + delay
            if delay > k.backoff_base:
                rec.waiting[name] = ("CrashLoopBackOff",
                                     f"back-off {delay:.0f}s restarting failed container={name} pod={rec.pod['metadata']['name']}")
                self.event("Warning", "BackOff", f"Back-off restarting failed container {name} in pod "
                           f"{rec.pod['metadata']['name']}")
        if now < until:
            return
        rec.backoff_until.pop(name, None)
        old = rec.last.get(name)
        if old is not None:
            try:
                await self.rt(k.runtime.remove_container, old.id)
            except LabkitError:
                pass
        rec.last[name] = cur
        rec.probe_state = {kk: v for kk, v in rec.probe_state.items() if kk[0] != name}
        rec.ready.pop(name, None)
        await self.start_container(c, restart=rec.restarts.get(name, 0) + 1)

    async def run_probes(self, c: dict, cur: ContainerStatus) -> None:
        rec, k = self.rec, self.k
        name = c["name"]
        for kind in ("readinessProbe", "livenessProbe"):
            probe = c.get(kind)
            if not probe:
                continue
            st = rec.probe_state.setdefault((name, kind), probes.ProbeState())
            if not probes.due(probe, st, cur.started_at):
                continue
            cmd = probes.probe_command(probe)
            if cmd is None:
                continue
            try:
                res = await self.rt(k.runtime.exec_sync, cur.id, cmd, float(probe.get("timeoutSeconds", 1)))
                ok, out = res.exit_code == 0, (res.stdout + res.stderr).decode(errors="replace").strip()
            except LabkitError as exc:
                ok, out = False, str(exc)
            if k.probe_observer is not None:
                k.probe_observer(kind, rec.key, name, ok)
            label = "Readiness" if kind == "readinessProbe" else "Liveness"
            if not ok:
                self.event("Warning", "Unhealthy", f"{label} probe failed: {out[:200]}")
            verdict = probes.record(probe, st, ok)
            if kind == "readinessProbe" and verdict is not None:
                rec.ready[name] = verdict
            if kind == "livenessProbe" and verdict is False:
                self.event("Normal", "Killing", f"Container {name} failed liveness probe, will be restarted")
                try:
                    await self.rt(k.runtime.stop_container, cur.id,
                                  float(rec.spec.get("terminationGracePeriodSeconds", 30)))
                except LabkitError:
                    pass
                rec.probe_state.pop((name, kind), None)

    # ------------------------------------------------------------------ termination
    async def terminate(self) -> None:
        rec, k = self.rec, self.k
        grace = rec.pod["metadata"].get("deletionGracePeriodSeconds")
        grace = float(rec.spec.get("terminationGracePeriodSeconds", 30) if grace is None else grace)
        if rec.sandbox is None:
            rec.sandbox = k.adopt_sandbox(rec.uid)
        if rec.sandbox is not None:
            cs_list = await self.rt(k.runtime.list_containers, rec.sandbox.id)
            running = [cs for cs in cs_list if cs.state == ContainerState.RUNNING]
            for cs in running:
                self.event("Normal", "Killing", f"Stopping container {cs.labels.get(C.CONTAINER_NAME, cs.name)}")
            await asyncio.gather(*(self.rt(k.runtime.stop_container, cs.id, grace) for cs in running),
                                 return_exceptions=True)
        await cleanup_pod(k, rec.pod, rec.sandbox)
        rec.sandbox = None
        if not rec.deleted:
            md = rec.pod["metadata"]
            try:
                await k.client.delete("pods", md["name"], md.get("namespace"), grace_period=0,
                                      preconditions_uid=md.get("uid"))
            except ApiError as exc:
                if exc.code not in (404, 409):
                    raise

    # ------------------------------------------------------------------ status
    def status(self) -> dict:
        rec, k = self.rec, self.k
        policy = rec.spec.get("restartPolicy", "Always")
        statuses, init_statuses = [], []
        states = []
        for group, out in (("initContainers", init_statuses), ("containers", statuses)):
            for c in rec.spec.get(group) or []:
                name = c["name"]
                cur = rec.current.get(name)
                last = rec.last.get(name)
                st = {"name": name, "image": c.get("image", ""), "imageID": "", "ready": False,
                      "restartCount": rec.restarts.get(name, 0), "started": False,
                      "lastState": C.state_of(last, k.runtime_name) if last else {}}
                if cur is None:
                    reason, msg = rec.waiting.get(name, ("ContainerCreating", ""))
                    st["state"] = {"waiting": {"reason": reason, **({"message": msg} if msg else {})}}
                else:
                    st["containerID"] = f"{k.runtime_name}://{cur.id}"
                    st["imageID"] = cur.image_ref or ""
                    st["state"] = C.state_of(cur, k.runtime_name)
                    running = cur.state == ContainerState.RUNNING
                    st["started"] = running
                    if group == "containers":
                        has_rp = bool(c.get("readinessProbe"))
                        st["ready"] = running and (rec.ready.get(name, False) if has_rp else True)
                    else:
                        st["ready"] = cur.state == ContainerState.EXITED and cur.exit_code == 0
                    if (cur.state == ContainerState.EXITED and name in rec.waiting
                            and self._restarts(policy, group, cur)):
                        # waiting to run again (back-off, a failed re-create): say why, keep the exit as lastState
                        reason, msg = rec.waiting[name]
                        st["lastState"] = st["state"]
                        st["state"] = {"waiting": {"reason": reason, "message": msg}}
                out.append(st)
                if group == "containers":
                    states.append((cur, st))
        phase = self._phase(policy, states)
        init_ok = all(s["ready"] for s in init_statuses)
        all_ready = bool(statuses) and all(s["ready"] for s in statuses)
        if phase in ("Succeeded", "Failed"):
            all_ready = False
        conds = [("PodReadyToStartContainers", rec.sandbox is not None), ("Initialized", init_ok),
                 ("Ready", all_ready), ("ContainersReady", all_ready), ("PodScheduled", True)]
        status = {
            "phase": phase,
            "conditions": [self._cond(t, ok) for t, ok in conds],
            "hostIP": k.address, "hostIPs": [{"ip": k.address}],
            "containerStatuses": statuses,
        }
        if init_statuses:
            status["initContainerStatuses"] = init_statuses
        if rec.ip:
            status["podIP"] = rec.ip
            status["podIPs"] = [{"ip": rec.ip}]
        if rec.start_time:
            status["startTime"] = rec.start_time
        return status

    def _cond(self, typ: str, ok: bool) -> dict:
        s = "True" if ok else "False"
        old = self.rec.conditions.get(typ)
        if old is None or old["status"] != s:
            old = {"type": typ, "status": s, "lastProbeTime": None, "lastTransitionTime": now_iso()}
            if typ in ("Ready", "ContainersReady") and not ok:
                old["reason"] = "ContainersNotReady"
            self.rec.conditions[typ] = old
        return old

    @staticmethod
    def _restarts(policy: str, group: str, cur: ContainerStatus) -> bool:
        """Will this exited container run again? (Otherwise its state stays terminated, whatever went before.)"""
        if group == "initContainers":
            return cur.exit_code != 0 and policy != "Never"
        return policy == "Always" or (policy == "OnFailure" and cur.exit_code != 0)

    @staticmethod
    def _phase(policy: str, states: list[tuple[ContainerStatus | None, dict]]) -> str:
        if not states or any(cur is None for cur, _ in states):
            return "Pending"
        # UNKNOWN: the process is gone but its exit is not recorded yet (a few ms for a quick
        # command); it is still Running until the runtime says how it ended, never Succeeded
        running = [cur for cur, _ in states if cur.state != ContainerState.EXITED]
        exited = [cur for cur, _ in states if cur.state == ContainerState.EXITED]
        if running:
            return "Running"
        if policy == "Always":
            return "Running"  # exited containers are restarting
        if exited and all(cur.exit_code == 0 for cur in exited):
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"

    async def report(self) -> None:
        rec, k = self.rec, self.k
        status = self.status()
        if status == rec.last_sent:
            return
        md = rec.pod["metadata"]
        try:
            new = await k.client.patch("pods", md["name"], {"status": status}, md.get("namespace"), sub="status")
        except ApiError as exc:
            if exc.not_found:
                rec.deleted = True
                rec.wake.set()
                return
            raise
        rec.last_sent = status
        if isinstance(new, dict) and new.get("metadata", {}).get("uid") == rec.uid:
            rec.pod = new
        if status["phase"] in ("Succeeded", "Failed"):
            rec.done = True
