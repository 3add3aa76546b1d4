"""The Mesos master: ``POST /api/v1/scheduler`` (the v1 scheduler HTTP API, JSON), agents, offers.

Two-level scheduling: the master decides *which framework* is offered an agent's free resources
(:class:`~labkit.mesos.allocator.DRFAllocator`); the framework decides *what to run* on them and
answers ACCEPT or DECLINE. The master never sees a framework's queue of work.

The master serves on a background thread (``Master().start()``, ``.url``, ``.stop()`` or ``with``);
its state lives on that thread's event loop. Agents are in-process and run tasks as containers
through :mod:`labkit.runtime`; their status updates come back as UPDATE events, one at a time per
task until the framework ACKNOWLEDGEs each (as Mesos' status update manager sends them).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from labkit.mesos import protocol as p
from labkit.mesos.agent import Agent, task_run
from labkit.mesos.allocator import DRFAllocator, contains, subtract
from labkit.mesos.protocol import TaskState
from labkit.runtime.base import Runtime

log = logging.getLogger(__name__)
VERSION = "1.11.0"  # the Mesos release whose v1 API this follows
# For a process that is only a master (``python -m labkit.mesos``): a round over 1,000 agents makes
# ~15,000 short-lived dicts, and at CPython's default gen0 threshold (700) they push full collections
# into most rounds; bench_offers.py measures both settings.
GC_THRESHOLDS = (50_000, 20, 100)


@dataclass
class Framework:
    id: str
    info: dict[str, Any]
    order: int
    stream_id: str = ""
    queue: asyncio.Queue | None = None
    connected: bool = False
    offers: set[str] = field(default_factory=set)
    tasks: set[str] = field(default_factory=set)
    failover: asyncio.TimerHandle | None = None

    @property
    def partition_aware(self) -> bool:
        return any(c.get("type") == "PARTITION_AWARE" for c in self.info.get("capabilities", []))


@dataclass
class Offer:
    id: str
    framework_id: str
    agent_id: str
    resources: dict[str, float]
    created: float


@dataclass
class Task:
    id: str
    framework_id: str
    agent_id: str
    name: str
    resources: dict[str, float]
    state: TaskState = TaskState.TASK_STAGING
    healthy: bool | None = None
    status: dict[str, Any] = field(default_factory=dict)  # the latest TaskStatus
    pending: deque = field(default_factory=deque)  # updates not yet acknowledged, oldest first


class CallError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Master:
    """A master with in-process agents; ``runtime`` names the labkit backend its agents use
    (None: the host's best, see ``runtime_reason``)."""

    def __init__(self, runtime: str | Runtime | None = None, host: str = "127.0.0.1", port: int = 0,
                 heartbeat_interval: float = 15.0, allocation_interval: float = 1.0,
                 offer_timeout: float | None = None, seed: int | None = None, kill_grace_seconds: float = 3.0) -> None:
        self.host, self.port = host, port
        self.heartbeat_interval = heartbeat_interval
        self.allocation_interval = allocation_interval
        self.offer_timeout = offer_timeout
        self.kill_grace_seconds = kill_grace_seconds  # SIGTERM, then this long before SIGKILL
        self._runtime_arg = runtime
        self.runtime: Runtime | None = None
        self.runtime_reason = ""
        self.id = f"{uuid.uuid4()}"
        self.allocator = DRFAllocator(seed=seed)
        self.frameworks: dict[str, Framework] = {}
        self.agents: dict[str, Agent] = {}
        self.offers: dict[str, Offer] = {}
        self.tasks: dict[str, Task] = {}  # by "framework id/task id"
        self.completed: list[dict[str, Any]] = []
        # per allocation round: (monotonic start, wall seconds, CPU seconds of the master's thread, offers)
        self.rounds: list[tuple[float, float, float, int]] = []
        self._next = {"framework": 0, "agent": 0, "offer": 0}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._runner: web.AppRunner | None = None
        self._wake: asyncio.Event | None = None
        self._stopped: asyncio.Event | None = None
        self._background: list[asyncio.Task] = []

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Master:
        """Serve on a background thread; returns once the port accepts connections."""
        self.runtime, self.runtime_reason = self._choose_runtime()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start_async())
            except BaseException as exc:  # bind errors go to the caller of start()
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            loop.run_until_complete(self._stopped.wait())  # type: ignore[union-attr]
            loop.run_until_complete(self._stop_async())
            loop.close()

        self._thread = threading.Thread(target=run, name="labkit-mesos-master", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise RuntimeError(f"the Mesos master could not start on {self.host}:{self.port}: {self._error}")
        return self

    def _choose_runtime(self) -> tuple[Runtime, str]:
        from labkit.runtime import selection

        arg = self._runtime_arg
        if isinstance(arg, Runtime):
            return arg, f"{arg.name}: chosen by the caller"
        if arg is None:
            rt = selection.default()
            return rt, getattr(rt, "reason", rt.name)
        return selection.get(arg), f"{arg}: asked for by name"

    def stop(self) -> None:
        """Tear down every framework, kill every task and remove its container, stop serving."""
        if self.loop is not None and self._stopped is not None and self._thread is not None:
            self.loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(60)
            self._thread = None

    def __enter__(self) -> Master:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _start_async(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post(p.SCHEDULER_PATH, self._http_scheduler)
        app.router.add_post("/master" + p.SCHEDULER_PATH, self._http_scheduler)
        app.router.add_get("/state", self._http_state)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._background = [asyncio.ensure_future(self._allocation_loop()),
                            asyncio.ensure_future(self._heartbeat_loop())]

    async def _stop_async(self) -> None:
        for t in self._background:
            t.cancel()
        for fw in list(self.frameworks.values()):
            self._remove_framework(fw)
        agents = list(self.agents.values())
        await asyncio.get_running_loop().run_in_executor(None, lambda: [a.shutdown() for a in agents])
        await asyncio.sleep(0)  # let the last status callbacks run
        if self._runner is not None:
            await self._runner.cleanup()

    def _on_loop(self, fn: Any, *args: Any) -> Any:
        """Run ``fn`` on the master's loop (its state's only writer) and return its result."""
        async def call() -> Any:
            return fn(*args)
        assert self.loop is not None, "start() the master first"
        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(30)

    # ------------------------------------------------------------------ agents
    def add_agent(self, hostname: str | None = None, cpus: float = 1.0, mem: float = 1024.0,
                  disk: float = 0.0, attributes: dict[str, str] | None = None) -> str:
        """Register an agent (``mem``/``disk`` in MB, as Mesos counts them); returns its id."""
        if cpus <= 0 or mem <= 0:
            raise ValueError(f"an agent needs positive cpus and mem, got cpus={cpus} mem={mem}")
        return self._on_loop(self._add_agent, hostname, {"cpus": cpus, "mem": mem, "disk": disk}, attributes)

    def _add_agent(self, hostname: str | None, resources: dict[str, float], attributes: dict[str, str] | None) -> str:
        n = self._next["agent"]
        self._next["agent"] += 1
        aid = f"{self.id}-S{n}"
        resources = {k: v for k, v in resources.items() if v > 0}
        assert self.runtime is not None and self.loop is not None
        loop = self.loop

        def sink(key: str, state: TaskState, message: str, healthy: bool | None, reason: str | None) -> None:
            loop.call_soon_threadsafe(self._agent_status, aid, key, state, message, healthy, reason)

        self.agents[aid] = Agent(aid, hostname or f"agent-{n + 1}", resources, self.runtime, sink, attributes,
                                 kill_grace_seconds=self.kill_grace_seconds)
        self.allocator.add_agent(aid, resources)
        self._wake_allocator()
        return aid

    def remove_agent(self, agent_id: str) -> None:
        """The agent is gone: its offers are rescinded and its tasks reported TASK_LOST (or TASK_GONE to
        PARTITION_AWARE frameworks), as when Mesos removes an agent."""
        agent = self._on_loop(self._remove_agent, agent_id)
        agent.shutdown()

    def _remove_agent(self, agent_id: str) -> Agent:
        agent = self.agents.pop(agent_id)
        for offer in [o for o in self.offers.values() if o.agent_id == agent_id]:
            self._rescind(offer)
        for task in [t for t in self.tasks.values() if t.agent_id == agent_id and not t.state.terminal]:
            fw = self.frameworks.get(task.framework_id)
            state = TaskState.TASK_GONE if fw is not None and fw.partition_aware else TaskState.TASK_LOST
            self._task_status(task, state, "Agent removed", None, "REASON_AGENT_REMOVED", "SOURCE_MASTER")
        self.allocator.remove_agent(agent_id)
        return agent

    # ------------------------------------------------------------------ the HTTP API
    async def _http_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.snapshot())

    async def _http_scheduler(self, request: web.Request) -> web.StreamResponse:
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype == "application/x-protobuf":
            return web.Response(status=415, text="This master speaks JSON only: send 'Content-Type: application/json'")
        if ctype != p.CONTENT_TYPE:
            return web.Response(status=415, text="Expecting 'Content-Type' of application/json or "
                                                 "application/x-protobuf")
        try:
            call = json.loads(await request.read())
            if not isinstance(call, dict):
                raise ValueError("expected a JSON object")
        except ValueError as exc:
            return web.Response(status=400, text=f"Failed to parse body into Call protobuf: {exc}")
        kind = call.get("type")
        if kind is None:
            return web.Response(status=400, text="Failed to validate scheduler::Call: Expecting 'type' to be present")
        if kind not in p.CALL_TYPES + p.OTHER_CALL_TYPES:
            return web.Response(status=400, text=f"Failed to parse body into Call protobuf: {kind!r} is not a "
                                                 f"scheduler::Call type")
        if kind not in p.CALL_TYPES:
            return web.Response(status=501, text=f"Call type {kind} is not implemented by this master; it serves "
                                                 f"{', '.join(p.CALL_TYPES)}")
        if kind == "SUBSCRIBE":
            return await self._subscribe(request, call)
        try:
            fw = self._caller(request, call)
            getattr(self, "_call_" + kind.lower())(fw, call.get(kind.lower()) or {})
        except CallError as exc:
            return web.Response(status=exc.status, text=str(exc))
        return web.Response(status=202)

    def _caller(self, request: web.Request, call: dict[str, Any]) -> Framework:
        fid = p.value_of(call.get("framework_id"))
        if not fid:
            raise CallError(400, "Failed to validate scheduler::Call: Expecting 'framework_id' to be present")
        fw = self.frameworks.get(fid)
        if fw is None:
            raise CallError(400, "Framework cannot be found")
        if not fw.connected:
            raise CallError(403, "Framework is not subscribed")
        sid = request.headers.get(p.STREAM_HEADER)
        if sid is None:
            raise CallError(400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header")
        if sid != fw.stream_id:
            raise CallError(400, f"The stream ID '{sid}' included in this request didn't match the stream ID "
                                 f"currently associated with framework ID {fid}")
        return fw

    async def _subscribe(self, request: web.Request, call: dict[str, Any]) -> web.StreamResponse:
        sub = call.get("subscribe")
        if not isinstance(sub, dict) or not isinstance(sub.get("framework_info"), dict):
            return web.Response(status=400, text="Failed to validate scheduler::Call: Expecting 'subscribe' to be "
                                                 "present")
        accept = [a.split(";")[0].strip().lower() for a in request.headers.get("Accept", "*/*").split(",")]
        if not {"*/*", "application/*", p.CONTENT_TYPE} & set(accept):
            return web.Response(status=406, text="Expecting 'Accept' to allow 'application/x-protobuf' or "
                                                 "'application/json' (this master streams JSON only)")
        if p.STREAM_HEADER in request.headers:
            return web.Response(status=400, text="Subscribe calls should not include the 'Mesos-Stream-Id' header")
        info = dict(sub["framework_info"])
        for key in ("user", "name"):
            if not isinstance(info.get(key), str):
                return web.Response(status=400, text=f"Failed to parse body into Call protobuf: "
                                                     f"framework_info.{key} is required (a string)")
        fid = p.value_of(info.get("id"))
        if p.value_of(call.get("framework_id")) not in (None, fid):
            return web.Response(status=400, text="Failed to validate scheduler::Call: 'framework_id' differs from "
                                                 "'subscribe.framework_info.id'")
        fw = self.frameworks.get(fid) if fid else None
        if fw is None:
            if not fid:
                fid = f"{self.id}-{self._next['framework']:04d}"
                self._next["framework"] += 1
            fw = Framework(id=fid, info=info, order=len(self.frameworks))
            self.frameworks[fid] = fw
            self.allocator.add_framework(fid)
        else:  # failover: the new connection replaces the old one
            if fw.failover is not None:
                fw.failover.cancel()
                fw.failover = None
            if fw.queue is not None:
                fw.queue.put_nowait({"type": "ERROR", "error": {"message": "Framework failed over"}})
                fw.queue.put_nowait(None)
            fw.info = info
            self.allocator.activate(fid, True)
        info["id"] = {"value": fid}
        stream_id = str(uuid.uuid4())
        queue: asyncio.Queue = asyncio.Queue()
        fw.stream_id, fw.queue, fw.connected = stream_id, queue, True
        resp = web.StreamResponse(status=200, headers={"Content-Type": p.CONTENT_TYPE, p.STREAM_HEADER: stream_id})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        queue.put_nowait({"type": "SUBSCRIBED", "subscribed": {
            "framework_id": {"value": fid}, "heartbeat_interval_seconds": self.heartbeat_interval,
            "master_info": {"id": self.id, "ip": 0, "port": self.port, "hostname": socket.gethostname(),
                            "version": VERSION, "address": {"ip": self.host, "port": self.port}}}})
        for tid in fw.tasks:  # updates the previous connection did not acknowledge
            task = self.tasks.get(tid)
            if task is not None and task.pending:
                queue.put_nowait(task.pending[0])
        self._wake_allocator()
        try:
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), 0.5)
                except TimeoutError:
                    if request.transport is None or request.transport.is_closing():
                        break
                    continue
                if event is None:
                    break
                await resp.write(p.record(event))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            if fw.stream_id == stream_id and fw.id in self.frameworks:
                self._disconnected(fw)
        return resp

    def _send(self, fw: Framework, event: dict[str, Any]) -> None:
        if fw.connected and fw.queue is not None:
            fw.queue.put_nowait(event)

    def _disconnected(self, fw: Framework) -> None:
        """The scheduler's stream ended: its offers go back; after failover_timeout (0 by default)
        the framework is removed and its tasks killed, as Mesos does."""
        fw.connected, fw.queue = False, None
        for oid in list(fw.offers):
            self._recover_offer(self.offers[oid], 0.0)
        self.allocator.activate(fw.id, False)
        timeout = float(fw.info.get("failover_timeout", 0) or 0)
        if timeout <= 0:
            self._remove_framework(fw)
        else:
            assert self.loop is not None
            fw.failover = self.loop.call_later(timeout, self._failover_expired, fw.id)

    def _failover_expired(self, fid: str) -> None:
        fw = self.frameworks.get(fid)
        if fw is not None and not fw.connected:
            self._remove_framework(fw)

    def _remove_framework(self, fw: Framework) -> None:
        for oid in list(fw.offers):
            self._recover_offer(self.offers[oid], 0.0)
        for tid in list(fw.tasks):
            task = self.tasks[tid]
            if not task.state.terminal and task.agent_id in self.agents:
                self.agents[task.agent_id].kill(tid)
            elif task.state.terminal:
                self._forget(task)  # its last update will never be acknowledged now
        if fw.queue is not None:
            fw.queue.put_nowait(None)
        fw.connected, fw.queue = False, None
        self.frameworks.pop(fw.id, None)
        self.allocator.remove_framework(fw.id)

    # ------------------------------------------------------------------ calls
    def _call_teardown(self, fw: Framework, body: dict[str, Any]) -> None:
        self._remove_framework(fw)

    def _call_suppress(self, fw: Framework, body: dict[str, Any]) -> None:
        self.allocator.suppress(fw.id)

    def _call_revive(self, fw: Framework, body: dict[str, Any]) -> None:
        self.allocator.revive(fw.id)
        self._wake_allocator()

    def _call_decline(self, fw: Framework, body: dict[str, Any]) -> None:
        refuse = _refuse_seconds(body)
        for oid in (p.value_of(o) for o in body.get("offer_ids", [])):
            offer = self.offers.get(oid or "")
            if offer is not None and offer.framework_id == fw.id:
                self._recover_offer(offer, refuse)

    def _call_accept(self, fw: Framework, body: dict[str, Any]) -> None:
        refuse = _refuse_seconds(body)
        ids = [p.value_of(o) or "" for o in body.get("offer_ids", [])]
        offers = [self.offers.get(i) for i in ids]
        bad = [i for i, o in zip(ids, offers, strict=True) if o is None or o.framework_id != fw.id]
        valid = [o for o in offers if o is not None and o.framework_id == fw.id]
        if len({o.agent_id for o in valid}) > 1 or len(set(ids)) != len(ids):
            bad = ids  # offers from several agents, or one offer twice: Mesos refuses the lot
        infos = [ti for op in body.get("operations", []) if op.get("type") == "LAUNCH"
                 for ti in (op.get("launch") or {}).get("task_infos", [])]
        if bad or not ids:
            for o in valid:
                self._recover_offer(o, 0.0)
            why = f"Task launched with invalid offers: {', '.join(bad) or 'no offer_ids'}"
            for ti in infos:
                self._orphan_status(fw, ti, TaskState.TASK_DROPPED if fw.partition_aware else TaskState.TASK_LOST,
                                    why, "REASON_INVALID_OFFERS")
            return
        agent_id = valid[0].agent_id
        pool: dict[str, float] = {}
        for o in valid:
            for k, v in o.resources.items():
                pool[k] = round(pool.get(k, 0.0) + v, 3)
            self.offers.pop(o.id, None)
            fw.offers.discard(o.id)
        agent = self.agents[agent_id]
        for ti in infos:
            error = None
            try:
                run = task_run(ti, fw.id)
                res = p.from_resources(ti.get("resources", []))
            except ValueError as exc:
                error = str(exc)
            else:
                key = f"{fw.id}/{run.task_id}"
                if key in self.tasks and not self.tasks[key].state.terminal:
                    error = f"Task has duplicate ID: {run.task_id}"
                elif p.value_of(ti.get("agent_id")) != agent_id:
                    error = f"Task uses agent {p.value_of(ti.get('agent_id'))} but its offers are for {agent_id}"
                elif not res:
                    error = "Task uses no resources"
                elif not contains(pool, res):
                    error = f"Task uses more resources {res} than available {pool}"
            if error is not None:
                self._orphan_status(fw, ti, TaskState.TASK_ERROR, error, "REASON_TASK_INVALID")
                continue
            pool = subtract(pool, res)
            task = Task(id=run.task_id, framework_id=fw.id, agent_id=agent_id, name=str(ti.get("name", "")),
                        resources=res)
            self.tasks[key] = task
            fw.tasks.add(key)
            agent.launch(run)
        if any(v > 0 for v in pool.values()):
            self.allocator.recover(fw.id, agent_id, {k: v for k, v in pool.items() if v > 0}, refuse,
                                   time.monotonic())

    def _call_kill(self, fw: Framework, body: dict[str, Any]) -> None:
        tid = p.value_of(body.get("task_id"))
        if not tid:
            raise CallError(400, "Failed to validate scheduler::Call: Expecting 'task_id' to be present")
        task = self.tasks.get(f"{fw.id}/{tid}")
        if task is None or task.state.terminal:
            self._orphan_status(fw, {"task_id": {"value": tid}, "agent_id": body.get("agent_id")},
                                TaskState.TASK_UNKNOWN if fw.partition_aware else TaskState.TASK_LOST,
                                "Attempted to kill an unknown task", "REASON_RECONCILIATION")
            return
        agent = self.agents.get(task.agent_id)
        if agent is not None:
            agent.kill(f"{fw.id}/{tid}")

    def _call_acknowledge(self, fw: Framework, body: dict[str, Any]) -> None:
        tid = p.value_of(body.get("task_id"))
        task = self.tasks.get(f"{fw.id}/{tid}")
        if task is None or not task.pending:
            return
        if task.pending[0]["update"]["status"].get("uuid") != body.get("uuid"):
            return  # an old or unknown uuid: Mesos ignores it
        task.pending.popleft()
        if task.pending:
            self._send(fw, task.pending[0])
        elif task.state.terminal:
            self._forget(task)

    def _call_reconcile(self, fw: Framework, body: dict[str, Any]) -> None:
        asked = [p.value_of(t.get("task_id")) for t in body.get("tasks", [])]
        if not asked:  # implicit: every task the master knows
            asked = [self.tasks[k].id for k in fw.tasks]
        for tid in asked:
            task = self.tasks.get(f"{fw.id}/{tid}")
            if task is None:
                self._orphan_status(fw, {"task_id": {"value": tid}},
                                    TaskState.TASK_UNKNOWN if fw.partition_aware else TaskState.TASK_LOST,
                                    "Reconciliation: Task is unknown", "REASON_RECONCILIATION")
                continue
            status = dict(task.status or self._status_json(task, task.state, "", None, None, "SOURCE_MASTER"))
            status.pop("uuid", None)  # reconciliation updates need no acknowledgement
            status.update(source="SOURCE_MASTER", reason="REASON_RECONCILIATION", message="Reconciliation: Latest "
                          "task state", timestamp=time.time())
            self._send(fw, {"type": "UPDATE", "update": {"status": status}})

    # ------------------------------------------------------------------ task status
    def _status_json(self, task: Task, state: TaskState, message: str, healthy: bool | None, reason: str | None,
                     source: str) -> dict[str, Any]:
        status: dict[str, Any] = {"task_id": {"value": task.id}, "state": state.name, "source": source,
                                  "agent_id": {"value": task.agent_id}, "timestamp": time.time(),
                                  "uuid": base64.b64encode(uuid.uuid4().bytes).decode()}
        if source != "SOURCE_MASTER":
            status["executor_id"] = {"value": task.id}  # the command executor is named after its task
        if message:
            status["message"] = message
        if reason:
            status["reason"] = reason
        if healthy is not None:
            status["healthy"] = healthy
        return status

    def _agent_status(self, agent_id: str, key: str, state: TaskState, message: str, healthy: bool | None,
                      reason: str | None) -> None:
        if agent_id not in self.agents:
            return  # removed: the master has already said TASK_LOST
        task = self.tasks.get(key)
        if task is not None and task.agent_id == agent_id and not task.state.terminal:
            self._task_status(task, state, message, healthy, reason, "SOURCE_EXECUTOR")

    def _task_status(self, task: Task, state: TaskState, message: str, healthy: bool | None, reason: str | None,
                     source: str) -> None:
        task.state = state
        if healthy is not None:
            task.healthy = healthy
        task.status = self._status_json(task, state, message, healthy, reason, source)
        if state.terminal:
            self.allocator.recover(task.framework_id, task.agent_id, task.resources)
        fw = self.frameworks.get(task.framework_id)
        if fw is None:
            if state.terminal:
                self._forget(task)
            return
        event = {"type": "UPDATE", "update": {"status": task.status}}
        task.pending.append(event)
        if len(task.pending) == 1:
            self._send(fw, event)

    def _orphan_status(self, fw: Framework, ti: dict[str, Any], state: TaskState, message: str, reason: str) -> None:
        """An update about a task the master does not run (invalid, unknown): no uuid, no ack."""
        status = {"task_id": {"value": p.value_of(ti.get("task_id")) or ""}, "state": state.name,
                  "source": "SOURCE_MASTER", "message": message, "reason": reason, "timestamp": time.time()}
        if p.value_of(ti.get("agent_id")):
            status["agent_id"] = {"value": p.value_of(ti.get("agent_id"))}
        self._send(fw, {"type": "UPDATE", "update": {"status": status}})

    def _forget(self, task: Task) -> None:
        key = f"{task.framework_id}/{task.id}"
        if self.tasks.get(key) is task:
            del self.tasks[key]
            fw = self.frameworks.get(task.framework_id)
            if fw is not None:
                fw.tasks.discard(key)
            self.completed.append(self._task_view(task))

    # ------------------------------------------------------------------ offers
    def _wake_allocator(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _allocation_loop(self) -> None:
        assert self._wake is not None
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.allocation_interval)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                self._expire_offers()
                self.allocation_round()
            except Exception:  # one bad round must not stop offers for good
                log.exception("allocation round failed")

    def allocation_round(self) -> int:
        """Run one DRF round and send each framework one OFFERS event; returns how many offers."""
        t0, c0 = time.perf_counter(), time.thread_time()
        now = time.monotonic()
        by_framework: dict[str, list[dict[str, Any]]] = {}
        for fid, aid, amounts in self.allocator.allocate(now):
            fw, agent = self.frameworks[fid], self.agents[aid]
            oid = f"{self.id}-O{self._next['offer']}"
            self._next["offer"] += 1
            self.offers[oid] = Offer(oid, fid, aid, amounts, now)
            fw.offers.add(oid)
            offer = {"id": {"value": oid}, "framework_id": {"value": fid}, "agent_id": {"value": aid},
                     "hostname": agent.hostname, "resources": p.to_resources(amounts),
                     "allocation_info": {"role": "*"}}
            if agent.attributes:
                offer["attributes"] = [{"name": k, "type": "TEXT", "text": {"value": v}}
                                       for k, v in agent.attributes.items()]
            by_framework.setdefault(fid, []).append(offer)
        for fid, offers in by_framework.items():
            self._send(self.frameworks[fid], {"type": "OFFERS", "offers": {"offers": offers}})
        count = sum(len(o) for o in by_framework.values())
        self.rounds.append((now, time.perf_counter() - t0, time.thread_time() - c0, count))
        del self.rounds[:-1000]
        return count

    def _expire_offers(self) -> None:
        if self.offer_timeout is None:
            return
        now = time.monotonic()
        for offer in [o for o in self.offers.values() if now - o.created >= self.offer_timeout]:
            self._rescind(offer)

    def _rescind(self, offer: Offer) -> None:
        fw = self.frameworks.get(offer.framework_id)
        self._recover_offer(offer, 0.0)
        if fw is not None:
            self._send(fw, {"type": "RESCIND", "rescind": {"offer_id": {"value": offer.id}}})

    def _recover_offer(self, offer: Offer, refuse_seconds: float) -> None:
        self.offers.pop(offer.id, None)
        fw = self.frameworks.get(offer.framework_id)
        if fw is not None:
            fw.offers.discard(offer.id)
        self.allocator.recover(offer.framework_id, offer.agent_id, offer.resources, refuse_seconds, time.monotonic())

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            for fw in list(self.frameworks.values()):
                self._send(fw, {"type": "HEARTBEAT"})

    # ------------------------------------------------------------------ what a reader looks at
    def _task_view(self, task: Task) -> dict[str, Any]:
        """What a reader sees of a task; ``container_id`` (while it runs) lets a lab exec into it."""
        agent = self.agents.get(task.agent_id)
        key = f"{task.framework_id}/{task.id}"
        return {"task_id": task.id, "framework_id": task.framework_id, "name": task.name,
                "agent_id": task.agent_id, "hostname": agent.hostname if agent else None,
                "state": task.state.name, "healthy": task.healthy, "resources": task.resources,
                "stdout": agent.outputs.get(f"{task.framework_id}/{task.id}") if agent else None,
                "container_id": run.container_id if agent and (run := agent.tasks.get(key)) else None}

    def snapshot(self) -> dict[str, Any]:
        """Frameworks (with dominant shares), agents (with free resources), tasks (live and completed)."""
        if self.loop is not None and threading.current_thread() is not self._thread:
            return self._on_loop(self.snapshot)
        frameworks = {}
        for fid, fw in self.frameworks.items():
            slot = self.allocator.frameworks.get(fid)
            frameworks[fid] = {"name": fw.info.get("name"), "connected": fw.connected,
                               "suppressed": bool(slot and slot.suppressed),
                               "dominant_share": self.allocator.dominant_share(fid) if slot else 0.0,
                               "allocated": dict(slot.allocated) if slot else {}, "offers": len(fw.offers)}
        agents = {aid: {"hostname": a.hostname, "resources": a.resources,
                        "free": self.allocator.agents[aid].free} for aid, a in self.agents.items()}
        return {"id": self.id, "runtime": self.runtime.name if self.runtime else None,
                "runtime_reason": self.runtime_reason, "frameworks": frameworks, "agents": agents,
                "tasks": [self._task_view(t) for t in self.tasks.values()], "completed_tasks": list(self.completed)}


def _refuse_seconds(body: dict[str, Any]) -> float:
    filters = body.get("filters") or {}
    try:
        return float(filters.get("refuse_seconds", p.DEFAULT_REFUSE_SECONDS))
    except (TypeError, ValueError):
        raise CallError(400, "Failed to parse body into Call protobuf: filters.refuse_seconds must be a number") from None
