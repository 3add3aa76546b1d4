"""Job controller: run pods until ``completions`` of them succeed, at most ``parallelism`` at a time.

Each sync counts the Job's pods (those it controls: ownerReference with controller=true):
active ones, Succeeded ones and Failed ones. It then

* finishes the Job when enough pods succeeded (``Complete``), when more pods failed than
  ``backoffLimit`` allows (``Failed``, reason ``BackoffLimitExceeded``) or when the Job ran longer
  than ``activeDeadlineSeconds`` (``Failed``, reason ``DeadlineExceeded``), deleting what still runs;
* otherwise creates pods up to ``min(parallelism, completions - succeeded)``, waiting
  10 s, 20 s, 40 s ... after failures before making replacements (Kubernetes' pod backoff).

Kubernetes keeps a finalizer on every Job pod so that a pod deleted early is still counted; labkit
counts the pods that exist and never lets a count go down, which is the same while pods are kept.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from labkit.client.informer import key_of
from labkit.client.pods import is_pod_active, is_pod_ready
from labkit.client.rest import ApiError
from labkit.client.timestamps import parse_time
from labkit.controlplane.controllers.base import Controller, OwnsPods, controller_of, owner_ref, split_key
from labkit.controlplane.controllers.replicaset import Expectations, random_suffix

BACKOFF_BASE_S = 10.0
BACKOFF_MAX_S = 360.0


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def finished(job: dict) -> str | None:
    """``"Complete"`` or ``"Failed"`` once the Job has that condition, else None."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return c["type"]
    return None


def finish_time(job: dict) -> float | None:
    """When the Job finished: its terminal condition's transition time."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return parse_time(c.get("lastTransitionTime"))
    return None


class JobController(OwnsPods, Controller):
    name = "job-controller"
    OWNER_KIND = "Job"

    def __init__(self, *a, clock=time.time, **kw):
        super().__init__(*a, **kw)
        self.clock = clock
        self.jobs = self.informers.get("jobs")
        self.pods = self.informers.get("pods")
        self.expectations = Expectations()
        # uids of Jobs this controller finished, until the watch shows their terminal condition:
        # a sync on the stale cached copy must not finish them (and say so in an Event) twice
        self._finishing: set[str] = set()
        self.jobs.add_handler(lambda o: self.queue.add(key_of(o)), lambda o, n: self.queue.add(key_of(n)),
                              self._job_deleted)
        self.pods.add_handler(self._pod_added, lambda o, n: self._pod_changed(n, o), self._pod_changed)

    def _job_deleted(self, job: dict) -> None:
        self.expectations.clear(key_of(job))
        self._finishing.discard(job["metadata"].get("uid"))

    def _pod_changed(self, pod: dict, old: dict | None = None) -> None:
        k = self._owner_key(pod)
        if k:
            self.queue.add(k)

    def owned_pods(self, job: dict) -> list[dict]:
        uid, ns = job["metadata"]["uid"], job["metadata"].get("namespace", "default")
        return [p for p in self.pods.cache.values()
                if p["metadata"].get("namespace") == ns and (controller_of(p) or {}).get("uid") == uid]

    async def sync(self, key: str) -> None:
        job = self.jobs.cache.get(key)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return
        spec, old = job.get("spec") or {}, job.get("status") or {}
        pods = self.owned_pods(job)
        active = [p for p in pods if is_pod_active(p)]
        phase = lambda p: (p.get("status") or {}).get("phase")  # noqa: E731
        succeeded = max(int(old.get("succeeded", 0)), sum(1 for p in pods if phase(p) == "Succeeded"))
        failed = sum(1 for p in pods if phase(p) == "Failed")
        if (spec.get("template") or {}).get("spec", {}).get("restartPolicy") == "OnFailure":
            failed += sum(c.get("restartCount", 0) for p in active
                          for c in (p.get("status") or {}).get("containerStatuses") or [])
        failed = max(int(old.get("failed", 0)), failed)
        now = self.clock()
        status: dict = {"active": len(active), "succeeded": succeeded, "failed": failed,
                        "ready": sum(1 for p in active if is_pod_ready(p)),
                        "terminating": sum(1 for p in pods if p["metadata"].get("deletionTimestamp")
                                           and phase(p) not in ("Succeeded", "Failed"))}
        conditions = list(old.get("conditions") or [])
        done = finished(job)
        if done:
            self._finishing.discard(job["metadata"]["uid"])
        elif job["metadata"]["uid"] in self._finishing:
            return  # finished already; the watch has not shown it yet
        if done:
            if active:
                await self._delete_pods(job, active)
            return
        if spec.get("suspend"):
            if active:
                await self._delete_pods(job, active)
            await self._write_status(job, {**status, "active": 0, "startTime": None}, conditions)
            return
        start = parse_time(old.get("startTime")) or now
        status["startTime"] = rfc3339(start)
        completions = spec.get("completions")
        backoff_limit = int(spec.get("backoffLimit", 6))
        deadline = spec.get("activeDeadlineSeconds")
        outcome = None
        if completions is not None and succeeded >= int(completions) or \
                completions is None and succeeded > 0 and not active:
            outcome = ("Complete", "CompletionsReached", "Reached expected number of succeeded pods")
        elif failed > backoff_limit:
            outcome = ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
        elif deadline is not None and now - start >= float(deadline):
            outcome = ("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
        if outcome:
            typ, reason, message = outcome
            if active:
                await self._delete_pods(job, active)
                status["active"], status["ready"] = 0, 0
            conditions.append({"type": typ, "status": "True", "reason": reason, "message": message,
                               "lastProbeTime": rfc3339(now), "lastTransitionTime": rfc3339(now)})
            if typ == "Complete":
                status["completionTime"] = rfc3339(now)
            await self._write_status(job, status, conditions)
            self._finishing.add(job["metadata"]["uid"])
            if typ == "Complete":
                self.recorder.event(job, "Normal", "Completed", "Job completed")
            else:
                self.recorder.event(job, "Warning", reason, message)
            return
        if deadline is not None:
            self.queue.add_after(key, max(0.0, start + float(deadline) - now) + 0.1)
        await self._manage_pods(key, job, active, pods, succeeded, failed, now)
        await self._write_status(job, status, conditions)

    async def _manage_pods(self, key: str, job: dict, active: list[dict], pods: list[dict], succeeded: int,
                           failed: int, now: float) -> None:
        spec = job.get("spec") or {}
        parallelism = int(spec.get("parallelism", 1))
        completions = spec.get("completions")
        if completions is None:
            want = 0 if succeeded else parallelism
        else:
            want = max(0, min(parallelism, int(completions) - succeeded))
        if not self.expectations.satisfied(key):
            return
        diff = want - len(active)
        if diff < 0:
            newest = sorted(active, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True)
            await self._delete_pods(job, newest[:-diff])
            return
        if diff == 0:
            return
        if failed:
            last_fail = max((parse_time(((c.get("state") or {}).get("terminated") or {}).get("finishedAt")) or 0.0
                             for p in pods if (p.get("status") or {}).get("phase") == "Failed"
                             for c in (p.get("status") or {}).get("containerStatuses") or []), default=0.0)
            wait = min(BACKOFF_BASE_S * 2 ** (failed - 1), BACKOFF_MAX_S) - (now - last_fail)
            if last_fail and wait > 0:
                self.queue.add_after(key, wait)
                return
        self.expectations.expect(key, adds=diff)
        for _ in range(diff):
            await self._create_pod(key, job)

    async def _create_pod(self, key: str, job: dict) -> None:
        tmpl = (job.get("spec") or {}).get("template") or {}
        md = tmpl.get("metadata") or {}
        ns = job["metadata"].get("namespace", "default")
        name = f"{job['metadata']['name']}-{random_suffix()}"
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": ns, "labels": dict(md.get("labels") or {}),
                            "annotations": dict(md.get("annotations") or {}), "ownerReferences": [owner_ref(job)]},
               "spec": tmpl.get("spec") or {}}
        try:
            await self.client.create("pods", pod, namespace=ns)
        except Exception:
            self.expectations.observed(key, adds=1)
            raise
        self.recorder.event(job, "Normal", "SuccessfulCreate", f"Created pod: {name}")

    async def _delete_pods(self, job: dict, pods: list[dict]) -> None:
        for p in pods:
            md = p["metadata"]
            try:
                await self.client.delete("pods", md["name"], md.get("namespace"))
            except ApiError as exc:
                if not exc.not_found:
                    raise
                continue
            self.recorder.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {md['name']}")

    async def _write_status(self, job: dict, status: dict, conditions: list[dict]) -> None:
        old = job.get("status") or {}
        status = {k: v for k, v in status.items() if v is not None or k in old}
        if conditions:
            status["conditions"] = conditions
        if all(old.get(k) == v for k, v in status.items()):
            return
        ns, name = split_key(key_of(job))
        await self.client.patch("jobs", name, {"status": status}, ns, sub="status")


class TTLAfterFinishedController(Controller):
    """Delete a finished Job ``ttlSecondsAfterFinished`` seconds after it finished; the garbage
    collector then removes its pods (kube-controller-manager's ttl-after-finished controller)."""

    name = "ttl-after-finished-controller"
    workers = 1

    def __init__(self, *a, clock=time.time, **kw):
        super().__init__(*a, **kw)
        self.clock = clock
        self.jobs = self.informers.get("jobs")
        self.jobs.add_handler(lambda o: self.queue.add(key_of(o)), lambda o, n: self.queue.add(key_of(n)))

    async def sync(self, key: str) -> None:
        job = self.jobs.cache.get(key)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        end = finish_time(job)
        if ttl is None or end is None:
            return
        left = end + float(ttl) - self.clock()
        if left > 0:
            self.queue.add_after(key, left + 0.1)
            return
        md = job["metadata"]
        await self.client.delete("jobs", md["name"], md.get("namespace"), propagation="Foreground",
                                 preconditions_uid=md["uid"])
