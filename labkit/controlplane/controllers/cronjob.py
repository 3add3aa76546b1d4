"""CronJob controller: create a Job from ``jobTemplate`` each time the schedule falls due.

Each sync looks at the CronJob's own Jobs (ownerReference with controller=true): the unfinished
ones are ``status.active``; finished ones beyond ``successfulJobsHistoryLimit`` and
``failedJobsHistoryLimit`` are deleted, oldest first. Then, unless ``suspend`` is set, it asks
the schedule which start times fell due since ``status.lastScheduleTime`` and, for the latest of
them (missed earlier ones are not run twice, as in Kubernetes), applies ``concurrencyPolicy``:

* ``Allow``: create the Job even if others still run;
* ``Forbid``: skip while one runs (the start is tried again when it finishes);
* ``Replace``: delete the running Jobs, then create the new one.

The Job is named ``CRONJOB-<scheduled time in minutes since the epoch>``, so a start is never made
twice. The controller then sleeps (``add_after``) until the next start time. The clock is an
argument, so tests can move time without waiting a minute.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from labkit.client.events import object_ref
from labkit.client.informer import key_of
from labkit.client.rest import ApiError
from labkit.client.timestamps import parse_time
from labkit.controlplane.controllers.base import Controller, controller_of, owner_ref, split_key
from labkit.controlplane.controllers.cronschedule import InvalidSchedule, due_times, next_time, parse_schedule
from labkit.controlplane.controllers.job import finish_time, finished

SCHEDULED_AT = "batch.kubernetes.io/cronjob-scheduled-timestamp"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _ts(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(ts: str | None) -> datetime | None:
    e = parse_time(ts)
    return None if e is None else datetime.fromtimestamp(e, UTC)


class CronJobController(Controller):
    name = "cronjob-controller"
    workers = 1

    def __init__(self, *a, clock: Callable[[], datetime] = _utc_now, **kw):
        super().__init__(*a, **kw)
        self.clock = clock
        self.cronjobs = self.informers.get("cronjobs")
        self.jobs = self.informers.get("jobs")
        self.cronjobs.add_handler(lambda o: self.queue.add(key_of(o)), lambda o, n: self.queue.add(key_of(n)))
        self.jobs.add_handler(self._job_changed, lambda o, n: self._job_changed(n), self._job_changed)

    def _job_changed(self, job: dict) -> None:
        ref = controller_of(job)
        if ref and ref.get("kind") == "CronJob":
            self.queue.add(f"{job['metadata'].get('namespace', 'default')}/{ref['name']}")

    def owned_jobs(self, cj: dict) -> list[dict]:
        uid, ns = cj["metadata"]["uid"], cj["metadata"].get("namespace", "default")
        return [j for j in self.jobs.cache.values()
                if j["metadata"].get("namespace") == ns and (controller_of(j) or {}).get("uid") == uid]

    async def sync(self, key: str) -> None:
        cj = self.cronjobs.cache.get(key)
        if cj is None or cj["metadata"].get("deletionTimestamp"):
            return
        spec, old = cj.get("spec") or {}, cj.get("status") or {}
        jobs = [j for j in self.owned_jobs(cj) if not j["metadata"].get("deletionTimestamp")]
        active = [j for j in jobs if not finished(j)]
        await self._cleanup(cj, jobs)
        status: dict = {"active": [self._ref(j) for j in active] or None}
        succeeded = [finish_time(j) for j in jobs if finished(j) == "Complete"]
        if succeeded:
            status["lastSuccessfulTime"] = _ts(datetime.fromtimestamp(max(t for t in succeeded if t), UTC))
        now = self.clock()
        schedule = spec.get("schedule", "")
        try:
            parse_schedule(schedule)
        except InvalidSchedule as exc:
            self.recorder.event(cj, "Warning", "UnparseableSchedule", f"unparseable schedule: {schedule}: {exc}")
            await self._write_status(cj, status)
            return
        if spec.get("suspend"):
            await self._write_status(cj, status)
            return
        since = _parse(old.get("lastScheduleTime")) or _parse(cj["metadata"].get("creationTimestamp")) or now
        due = due_times(schedule, since, now)
        if due:
            await self._start(cj, due[-1], active, now, status)
        await self._write_status(cj, status)
        wait = (next_time(schedule, now) - now).total_seconds()
        self.queue.add_after(key, max(0.05, wait + 0.1))

    async def _start(self, cj: dict, at: datetime, active: list[dict], now: datetime, status: dict) -> dict | None:
        spec = cj["spec"]
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None and (now - at) > timedelta(seconds=int(deadline)):
            self.recorder.event(cj, "Warning", "MissSchedule",
                                f"Missed scheduled time to start a job: {_ts(at)}")
            return None
        policy = spec.get("concurrencyPolicy", "Allow")
        if policy == "Forbid" and active:
            self.recorder.event(cj, "Normal", "JobAlreadyActive",
                                "Not starting job because prior execution is running and concurrency policy is Forbid")
            return None
        if policy == "Replace":
            for j in active:
                await self._delete_job(cj, j)
            status["active"] = None
        job = self._job_for(cj, at)
        ns = cj["metadata"].get("namespace", "default")
        try:
            created = await self.client.create("jobs", job, namespace=ns)
            self.recorder.event(cj, "Normal", "SuccessfulCreate", f"Created job {job['metadata']['name']}")
        except ApiError as exc:
            if exc.code != 409:
                raise
            created = await self.client.get("jobs", job["metadata"]["name"], ns)  # made already: same start
        status["active"] = [*(status.get("active") or []), self._ref(created)]
        status["lastScheduleTime"] = _ts(at)
        return created

    def _job_for(self, cj: dict, at: datetime) -> dict:
        tmpl = copy.deepcopy((cj.get("spec") or {}).get("jobTemplate") or {})
        md = tmpl.get("metadata") or {}
        return {"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": f"{cj['metadata']['name']}-{int(at.timestamp()) // 60}",
                             "namespace": cj["metadata"].get("namespace", "default"),
                             "labels": dict(md.get("labels") or {}),
                             "annotations": {**(md.get("annotations") or {}), SCHEDULED_AT: _ts(at)},
                             "ownerReferences": [owner_ref(cj)]},
                "spec": tmpl.get("spec") or {}}

    async def _cleanup(self, cj: dict, jobs: list[dict]) -> None:
        spec = cj.get("spec") or {}
        for outcome, limit in (("Complete", spec.get("successfulJobsHistoryLimit", 3)),
                               ("Failed", spec.get("failedJobsHistoryLimit", 1))):
            done = sorted((j for j in jobs if finished(j) == outcome),
                          key=lambda j: j["metadata"].get("creationTimestamp", ""))
            for j in done[: max(0, len(done) - int(limit if limit is not None else 0))]:
                await self._delete_job(cj, j)
                jobs.remove(j)

    async def _delete_job(self, cj: dict, job: dict) -> None:
        """Delete one of the CronJob's Jobs with its pods (Replace, history limits), and say so."""
        md = job["metadata"]
        try:
            await self.client.delete("jobs", md["name"], md.get("namespace"), propagation="Background")
        except ApiError as exc:
            if not exc.not_found:
                raise
        self.recorder.event(cj, "Normal", "SuccessfulDelete", f"Deleted job {md['name']}")

    @staticmethod
    def _ref(job: dict) -> dict:
        ref = object_ref(job)
        ref.pop("resourceVersion", None)  # the reference names the Job, not one version of it
        ref["kind"] = "Job"
        ref["apiVersion"] = "batch/v1"
        return ref

    async def _write_status(self, cj: dict, status: dict) -> None:
        old = cj.get("status") or {}
        if all(old.get(k) == v for k, v in status.items()):
            return
        ns, name = split_key(key_of(cj))
        await self.client.patch("cronjobs", name, {"status": status}, ns, sub="status")
