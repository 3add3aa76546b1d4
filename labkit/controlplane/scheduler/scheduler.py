"""The scheduler process: watch pods that nobody placed yet, decide, bind.

An ordinary API client. It keeps nodes and bound pods in a :class:`NodeTable` (from
informers), takes unscheduled pods whose ``spec.schedulerName`` is its own, runs
:meth:`Framework.schedule_one`, *assumes* the result at once (so the next pod already sees the
node as fuller) and binds through ``pods/binding`` concurrently, many binds in flight.
A pod that fits nowhere gets a FailedScheduling Event and waits for the cluster to change.

Several schedulers may share one cluster, as in Omega: each keeps its own copy of the cell's
state and binds optimistically. The bind is a conditional write (the apiserver sets
``spec.nodeName`` only while it is empty); a scheduler that loses answers the 409 by reading the
pod again and, if it is still unplaced, deciding again on that fresh state. ``conflicts`` and
``retries`` count this; each conflict is also logged. ``also_for`` (lab only) lets this scheduler
take the pods of other scheduler names too, so that two schedulers contend for the same pods.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from labkit.client import Client
from labkit.client.events import EventRecorder
from labkit.client.informer import Informer, key_of
from labkit.client.pods import is_pod_terminal
from labkit.client.rest import ApiError
from labkit.controlplane.scheduler import preemption
from labkit.controlplane.scheduler.decision import Decision
from labkit.controlplane.scheduler.framework import Framework
from labkit.controlplane.scheduler.nodetable import NodeTable
from labkit.controlplane.scheduler.plugins import PodInfo

log = logging.getLogger(__name__)

WHY_ANNOTATION = "scheduler.labkit.dev/why"
RETRY_UNSCHEDULABLE_S = 5.0


class Scheduler:
    def __init__(self, client: Client, name: str = "default-scheduler", *, framework: Framework | None = None,
                 bind_concurrency: int = 64, events: bool = True, explain_max_nodes: int = 16,
                 also_for: tuple[str, ...] | list[str] = ()):
        self.client = client
        self.name = name
        self.names = frozenset((name, *also_for))  # also_for: lab-only contention for other schedulers' pods
        self.framework = framework or Framework()
        self.table = NodeTable()
        self.events = EventRecorder(client, name, max_in_flight=4) if events else None
        self.explain_max_nodes = explain_max_nodes
        self.nodes = Informer(client, "nodes")
        self.pods = Informer(client, "pods")
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.queued: set[str] = set()
        self.unschedulable: set[str] = set()
        self.binding: set[str] = set()
        self.decisions: dict[str, Decision] = {}  # last decision per pod key (labs read it)
        self.nominated: dict[str, str] = {}  # preemptor pod key -> the node its victims are leaving
        # preemptor pod key -> the victims it asked to delete: until they are gone from the informer,
        # the nomination stands (the deletes run in a task, and the informer sees their deletion
        # timestamps later still; a retry in between preempted a second node's pods too)
        self.victims_of: dict[str, set[str]] = {}
        self.preemptions = 0
        self.bound = 0
        self.failed = 0
        self.attempts = {"scheduled": 0, "unschedulable": 0}  # scheduler_schedule_attempts_total
        self.conflicts = 0  # binds answered 409: another writer changed the pod first
        self.retries = 0  # pods decided again after a conflict, because they were still unplaced
        self.lost = 0  # conflicts where another scheduler had placed the pod: the fresh read ends the retry
        self._sem = asyncio.Semaphore(bind_concurrency)
        self._tasks: set[asyncio.Task] = set()
        self.nodes.add_handler(self._node_add, self._node_update, self._node_delete)
        self.pods.add_handler(self._pod_add, self._pod_update, self._pod_delete)

    # ------------------------------------------------------------------ informer handlers
    def _node_add(self, node: dict) -> None:
        if self.table.upsert_node(node):
            self._retry_unschedulable()

    def _node_update(self, old: dict, node: dict) -> None:
        self._node_add(node)

    def _node_delete(self, node: dict) -> None:
        self.table.remove_node(node["metadata"]["name"])

    def _mine(self, pod: dict) -> bool:
        spec = pod.get("spec") or {}
        return (spec.get("schedulerName") or "default-scheduler") in self.names

    def _pod_add(self, pod: dict) -> None:
        key = key_of(pod)
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            self.unschedulable.discard(key)
            if is_pod_terminal(pod):
                self.table.remove_pod(key)
            else:
                self.table.add_pod(key, node, pod)
        elif self._mine(pod) and not pod["metadata"].get("deletionTimestamp") and not is_pod_terminal(pod):
            if key not in self.unschedulable:
                self._enqueue(key)

    def _pod_update(self, old: dict, pod: dict) -> None:
        self._pod_add(pod)

    def _pod_delete(self, pod: dict) -> None:
        key = key_of(pod)
        self.table.remove_pod(key)
        self.unschedulable.discard(key)
        self.victims_of.pop(key, None)
        self._retry_unschedulable()

    def _enqueue(self, key: str) -> None:
        if key not in self.queued and key not in self.binding:
            self.queued.add(key)
            self.queue.put_nowait(key)

    def _retry_unschedulable(self) -> None:
        for key in list(self.unschedulable):
            self.unschedulable.discard(key)
            self._enqueue(key)

    # ------------------------------------------------------------------ the loop
    async def run(self) -> None:
        """Run until cancelled."""
        tasks = [asyncio.create_task(self.nodes.run()), asyncio.create_task(self.pods.run()),
                 asyncio.create_task(self._retry_loop())]
        try:
            await self.nodes.wait_synced(60)
            await self.pods.wait_synced(60)
            log.info("%s: synced %d nodes and %d pods; scheduling", self.name, len(self.nodes.cache),
                     len(self.pods.cache))
            await self._schedule_loop()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _retry_loop(self) -> None:
        while True:
            await asyncio.sleep(RETRY_UNSCHEDULABLE_S)
            self._retry_unschedulable()

    async def _schedule_loop(self) -> None:
        n = 0
        while True:
            key = await self.queue.get()
            self.queued.discard(key)
            pod = self.pods.cache.get(key)
            if pod is None or (pod.get("spec") or {}).get("nodeName") or pod["metadata"].get("deletionTimestamp"):
                continue
            await self._sem.acquire()  # back-pressure: never more than N binds in flight
            try:
                self.schedule_and_bind(pod)
            except Exception:
                self._sem.release()
                log.exception("scheduling %s failed", key)
            n += 1
            if n % 32 == 0:
                await asyncio.sleep(0)

    def schedule_and_bind(self, pod: dict) -> Decision:
        """One cycle: decide, assume, and start the bind (the semaphore is already held)."""
        p = PodInfo.of(pod)
        reserved = self.nominated.get(p.key)
        if reserved:
            self.table.remove_pod(f"nominated:{p.key}")  # its own reservation must not stand in its way
        d = self.framework.schedule_one(self.table, p)
        self.attempts["unschedulable" if d.node is None else "scheduled"] += 1
        self.decisions[p.key] = d
        if len(self.decisions) > 2048:
            self.decisions.pop(next(iter(self.decisions)))
        if d.node is None:
            self._sem.release()
            self.unschedulable.add(p.key)
            self.failed += 1
            pre = None
            if reserved and (self._victims_leaving(reserved)
                             or any(k in self.pods.cache for k in self.victims_of.get(p.key, ()))):
                self.table.add_pod(f"nominated:{p.key}", reserved, pod, p.requests)  # wait for them
            else:
                self.nominated.pop(p.key, None)
                self.victims_of.pop(p.key, None)
                leaving = {k for k in self.table.pods if k in self.pods.cache
                           and self.pods.cache[k]["metadata"].get("deletionTimestamp")}
                pre = preemption.find(self.table, p, d, self._priorities(), leaving)
            if pre is not None:
                self.nominated[p.key] = pre.node
                self.victims_of[p.key] = set(pre.victims)
                self.table.add_pod(f"nominated:{p.key}", pre.node, pod, p.requests)
                self.preemptions += 1
            task = asyncio.get_running_loop().create_task(self._mark_unschedulable(pod, d, pre))
        else:
            self.nominated.pop(p.key, None)
            self.victims_of.pop(p.key, None)
            self.table.add_pod(p.key, d.node, pod, p.requests)  # assume
            self.binding.add(p.key)
            task = asyncio.get_running_loop().create_task(self._bind(pod, p, d))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return d

    def _explain(self, d: Decision) -> str | None:
        if len(d.names) > self.explain_max_nodes:
            return None
        return json.dumps({n: d.why(n).split(": ", 1)[1] for n in d.names}, sort_keys=True)

    async def _bind(self, pod: dict, p: PodInfo, d: Decision) -> None:
        try:
            why = self._explain(d)
            await self._bind_call(pod, d.node, why)
            self.bound += 1
            if why:  # small clusters: leave the per-node verdicts on the pod for kubectl users
                md = pod["metadata"]
                try:
                    await self.client.patch("pods", md["name"], {"metadata": {"annotations": {WHY_ANNOTATION: why}}},
                                            md.get("namespace", "default"))
                except ApiError:
                    pass
            if self.events:
                self.events.event(pod, "Normal", "Scheduled", d.message())
        except ApiError as exc:
            self.table.remove_pod(p.key)  # forget the assumption
            if exc.code == 409:
                self.binding.discard(p.key)
                await self._after_conflict(pod, p, d.node)
            elif exc.code != 404:
                log.warning("bind %s -> %s failed: %s", p.key, d.node, exc)
                await asyncio.sleep(0.2)
                self.unschedulable.add(p.key)
        finally:
            self.binding.discard(p.key)
            self._sem.release()

    async def _after_conflict(self, pod: dict, p: PodInfo, wanted: str | None) -> None:
        """Optimistic concurrency's other half: the bind lost, so read fresh state and retry if there is work left."""
        self.conflicts += 1
        md = pod["metadata"]
        try:
            fresh = await self.client.get("pods", md["name"], md.get("namespace", "default"))
        except ApiError:
            log.info("bind conflict %d: %s (wanted %s) is gone", self.conflicts, p.key, wanted)
            return
        node = (fresh.get("spec") or {}).get("nodeName")
        if node:
            self.lost += 1
            self.table.add_pod(p.key, node, fresh)  # resync: count the winner's placement at once
            log.info("bind conflict %d: %s wanted %s but was already bound to %s; fresh state: nothing to retry",
                     self.conflicts, p.key, wanted, node)
        elif not fresh["metadata"].get("deletionTimestamp"):
            self.retries += 1
            log.info("bind conflict %d: %s wanted %s; still unplaced on fresh state: retry %d",
                     self.conflicts, p.key, wanted, self.retries)
            self.unschedulable.discard(p.key)
            self._enqueue(p.key)

    def counters(self) -> dict[str, int]:
        """What this scheduler did: pods bound, attempts that found no node, preemptions, bind conflicts, retries."""
        return {"bound": self.bound, "unschedulable": self.failed, "preemptions": self.preemptions,
                "conflicts": self.conflicts, "retries": self.retries, "lost": self.lost}

    async def _bind_call(self, pod: dict, node: str, why: str | None = None) -> None:
        md = pod["metadata"]
        body = {
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": md["name"], "namespace": md.get("namespace", "default"), "uid": md.get("uid")},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        await self.client.request("POST", f"/api/v1/namespaces/{md.get('namespace', 'default')}/pods/{md['name']}/binding",
                                  body=body)

    def _priorities(self) -> dict[str, int]:
        """The priority of every pod the table counts (from the pods informer)."""
        return {k: preemption.priority_of(self.pods.cache[k]) for k in self.table.pods if k in self.pods.cache}

    def _victims_leaving(self, node: str) -> bool:
        """Are pods on ``node`` still terminating (a preemption there is under way)?"""
        return any(p["metadata"].get("deletionTimestamp") and (p.get("spec") or {}).get("nodeName") == node
                   for p in self.pods.cache.values())

    async def _mark_unschedulable(self, pod: dict, d: Decision, pre: preemption.Preemption | None = None) -> None:
        msg = d.message()
        if self.events:
            self.events.event(pod, "Warning", "FailedScheduling", msg)
        md = pod["metadata"]
        ns = md.get("namespace", "default")
        if pre is not None:
            await self._preempt(pod, pre)
        cond = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": msg,
                "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        conds = [c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") != "PodScheduled"]
        status: dict = {"conditions": [*conds, cond]}
        if pre is not None:
            status["nominatedNodeName"] = pre.node
        elif any(c.get("message") == msg for c in (pod.get("status") or {}).get("conditions") or []):
            return
        try:
            await self.client.patch("pods", md["name"], {"status": status}, ns, sub="status")
        except ApiError as exc:
            log.debug("cannot mark %s unschedulable: %s", md["name"], exc)

    async def _preempt(self, pod: dict, pre: preemption.Preemption) -> None:
        """Delete the victims (gracefully), each with a Preempted Event naming the preemptor."""
        md = pod["metadata"]
        log.info("preemption: %s", pre.message(f"{md.get('namespace', 'default')}/{md['name']}"))
        for key in pre.victims:
            victim = self.pods.cache.get(key)
            if victim is None:
                continue
            vns, vname = key.split("/", 1)
            if self.events:
                self.events.event(victim, "Normal", "Preempted",
                                  f"Preempted by pod {md.get('uid', '')} on node {pre.node}")
            try:
                await self.client.delete("pods", vname, vns)
            except ApiError as exc:
                if exc.code != 404:
                    log.warning("preemption: cannot delete %s: %s", key, exc)
