"""The HorizontalPodAutoscaler controller: scale a workload so its pods use what the HPA asks.

Every sync period (kube's ``--horizontal-pod-autoscaler-sync-period``, 15 s by default) it looks at
each HPA: reads the target's ``scale`` subresource (replicas and the pod selector), the pods'
usage from ``metrics.k8s.io``, and their CPU requests, then

* **recommends** ``ceil(pods × usage / target)`` over the ready pods with metrics, and nothing
  when usage is within the tolerance (0.1) of the target. Pods without metrics or not ready are
  counted in the direction that makes scaling least eager, as Kubernetes does;
* **stabilizes**: scale down only to the highest recommendation of the last
  ``downscale_stabilization`` seconds (300 s by default), so a dip in load does not drop pods
  that a moment later are needed again; scale up at once (window 0);
* **clamps** to ``minReplicas``..``maxReplicas`` and at most ``max(2 × current, 4)`` per step;
* writes ``scale`` when the result differs, and the HPA's status: currentReplicas,
  desiredReplicas, currentMetrics, and the conditions AbleToScale, ScalingActive, ScalingLimited.

The pure parts (:func:`recommend`, :func:`stabilize`, :func:`limit`) are what the tests check.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass

from labkit.client import Client
from labkit.client.conditions import is_ready
from labkit.client.events import EventRecorder, now_iso
from labkit.client.quantity import milli_cpu, value
from labkit.client.resources import resource
from labkit.client.rest import ApiError
from labkit.client.selectors import InvalidSelector, LabelSelector
from labkit.controlplane.controllers.base import Controller, SharedInformers, split_key

log = logging.getLogger(__name__)

TOLERANCE = 0.1
SCALE_UP_FACTOR, SCALE_UP_MINIMUM = 2.0, 4  # kube's limit on one step up when no behavior is given


@dataclass(frozen=True)
class PodUsage:
    """One pod as the algorithm sees it: its usage and request (same unit), ready, and whether it has metrics."""
    usage: float | None  # None: metrics.k8s.io reports nothing for it (yet)
    request: float
    ready: bool = True


@dataclass(frozen=True)
class Recommendation:
    replicas: int
    utilization: int | None  # percent of request over the pods with metrics (None: no metrics at all)
    average: float | None  # usage per pod with metrics


def recommend(current: int, pods: list[PodUsage], target: float, tolerance: float = TOLERANCE,
              utilization: bool = True) -> Recommendation:
    """Kubernetes' replica calculation for one resource metric.

    ``target`` is a utilization in percent of the request (``utilization``) or an average value per
    pod. Ready pods with metrics give the ratio usage/target; the recommendation is
    ``ceil(ratio × their number)``, or ``current`` while the ratio is within ``tolerance`` of 1.
    Pods that are not ready count as using nothing when scaling up; pods without metrics count as
    using nothing when scaling up and exactly the target when scaling down; if that flips or
    cancels the direction, nothing changes.
    """
    measured = [p for p in pods if p.usage is not None and p.ready]
    unready = [p for p in pods if p.usage is not None and not p.ready]
    missing = [p for p in pods if p.usage is None]
    if not measured:
        return Recommendation(current, None, None)

    def ratio_of(group: list[PodUsage], usages: list[float]) -> tuple[float, int | None, float]:
        total = sum(usages)
        if utilization:
            requests = sum(p.request for p in group)
            pct = total * 100 / requests if requests else 0.0
            return pct / target, int(pct), total / len(group)
        avg = total / len(group)
        return avg / target, None, avg

    ratio, pct, avg = ratio_of(measured, [p.usage or 0.0 for p in measured])
    if not missing and not unready:
        if abs(ratio - 1.0) <= tolerance:
            return Recommendation(current, pct, avg)
        return Recommendation(math.ceil(ratio * len(measured)), pct, avg)
    group, usages = list(measured), [p.usage or 0.0 for p in measured]
    if ratio < 1.0:  # scaling down: a pod without metrics is taken to use exactly the target
        for p in missing:
            group.append(p)
            usages.append(p.request * target / 100 if utilization else target)
    else:  # scaling up: pods without metrics and pods not ready are taken to use nothing
        for p in missing + unready:
            group.append(p)
            usages.append(0.0)
    new_ratio, _, _ = ratio_of(group, usages)
    if abs(new_ratio - 1.0) <= tolerance or (ratio < 1.0) != (new_ratio < 1.0):
        return Recommendation(current, pct, avg)
    n = math.ceil(new_ratio * len(group))
    if (new_ratio < 1.0 and n > current) or (new_ratio > 1.0 and n < current):
        return Recommendation(current, pct, avg)
    return Recommendation(n, pct, avg)


def stabilize(history: list[tuple[float, int]], now: float, recommendation: int, current: int,
              down_window: float, up_window: float = 0.0) -> tuple[int, list[tuple[float, int]]]:
    """Add ``recommendation`` to ``history`` and return (stabilized replicas, history still in a window).

    Down: never below the highest recommendation of the last ``down_window`` seconds. Up: never
    above the lowest of the last ``up_window`` seconds (0: the recommendation itself)."""
    history = [(t, r) for t, r in history if now - t <= max(down_window, up_window)]
    history.append((now, recommendation))
    down_bound = max(r for t, r in history if now - t <= down_window)
    up_bound = min(r for t, r in history if now - t <= up_window)
    desired = current
    if desired < up_bound:
        desired = up_bound
    if desired > down_bound:
        desired = down_bound
    return desired, history


def limit(desired: int, current: int, min_replicas: int, max_replicas: int) -> tuple[int, str, str]:
    """Clamp to the HPA's bounds and kube's largest step up; returns (replicas, reason, message) for
    ScalingLimited (reason "DesiredWithinRange" when nothing was clamped)."""
    up_limit = max(int(SCALE_UP_FACTOR * current), SCALE_UP_MINIMUM)
    if desired > max_replicas and max_replicas <= up_limit:
        return max_replicas, "TooManyReplicas", "the desired replica count is more than the maximum replica count"
    if desired > up_limit:
        return up_limit, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"
    if desired < min_replicas:
        return min_replicas, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
    return desired, "DesiredWithinRange", "the desired count is within the acceptable range"


def _condition(type_: str, ok: bool, reason: str, message: str, old: list[dict]) -> dict:
    status = "True" if ok else "False"
    prev = next((c for c in old if c.get("type") == type_), None)
    since = prev["lastTransitionTime"] if prev and prev.get("status") == status and prev.get("lastTransitionTime") \
        else now_iso()
    return {"type": type_, "status": status, "lastTransitionTime": since, "reason": reason, "message": message}


def _resource_metric(hpa: dict) -> tuple[str, str, float] | None:
    """(resource name, "Utilization" | "AverageValue", target) of the HPA's first Resource metric."""
    for m in (hpa.get("spec") or {}).get("metrics") or []:
        if m.get("type") != "Resource":
            continue
        res = m.get("resource") or {}
        target = res.get("target") or {}
        if target.get("type") == "Utilization" and target.get("averageUtilization"):
            return res.get("name", "cpu"), "Utilization", float(target["averageUtilization"])
        if target.get("type") == "AverageValue" and target.get("averageValue") is not None:
            raw = target["averageValue"]
            amount = milli_cpu(raw) if res.get("name") == "cpu" else value(raw)
            return res.get("name", "cpu"), "AverageValue", float(amount)
    return None


class HorizontalPodAutoscalerController(Controller):
    name = "horizontal-pod-autoscaler"
    workers = 1

    def __init__(self, client: Client, informers: SharedInformers, recorder: EventRecorder | None = None, *,
                 sync_period: float = 15.0, downscale_stabilization: float = 300.0, tolerance: float = TOLERANCE):
        super().__init__(client, informers, recorder)
        self.sync_period = sync_period
        self.downscale_stabilization = downscale_stabilization
        self.tolerance = tolerance
        self.hpas = informers.get("horizontalpodautoscalers")
        self.pods = informers.get("pods")
        self.hpas.add_handler(lambda o: self.queue.add(_key(o)), lambda _o, n: self.queue.add(_key(n)),
                              lambda o: self.recommendations.pop(_key(o), None))
        self.recommendations: dict[str, list[tuple[float, int]]] = {}
        self.last_sync: dict[str, float] = {}

    async def run(self) -> None:
        await asyncio.gather(super().run(), self._resync())

    async def _resync(self) -> None:
        """Every sync period, every HPA is looked at again (metrics change without any watch event)."""
        while True:
            await asyncio.sleep(self.sync_period)
            for key in list(self.hpas.cache):
                self.queue.add(key)

    async def sync(self, key: str) -> None:
        hpa = self.hpas.cache.get(key)
        if hpa is None:
            return
        now = time.monotonic()
        # an update of the HPA (its own status write) must not make it act faster than its period
        if now - self.last_sync.get(key, -1e9) < self.sync_period * 0.9 and hpa.get("status", {}).get("conditions"):
            return
        self.last_sync[key] = now
        ns, name = split_key(key)
        spec, status = hpa.get("spec") or {}, dict(hpa.get("status") or {})
        old_conds = status.get("conditions") or []
        ref = spec.get("scaleTargetRef") or {}
        conds: list[dict] = []
        try:
            res = resource(ref.get("kind", ""))
            scale = await self.client.get(res, ref.get("name", ""), ns, sub="scale")
        except (KeyError, ApiError) as exc:
            conds.append(_condition("AbleToScale", False, "FailedGetScale",
                                    f"the HPA controller was unable to get the target's current scale: {exc}", old_conds))
            self.recorder.event(hpa, "Warning", "FailedGetScale", str(exc))
            await self._write_status(hpa, {**status, "conditions": conds})
            return
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        min_r, max_r = int(spec.get("minReplicas") or 1), int(spec.get("maxReplicas") or 1)
        new_status = {**status, "currentReplicas": int((scale.get("status") or {}).get("replicas") or 0)}
        if current == 0 and min_r > 0:
            conds += [_condition("AbleToScale", True, "SucceededGetScale",
                                 "the HPA controller was able to get the target's current scale", old_conds),
                      _condition("ScalingActive", False, "ScalingDisabled",
                                 "scaling is disabled since the replica count of the target is zero", old_conds)]
            await self._write_status(hpa, {**new_status, "desiredReplicas": 0, "conditions": conds})
            return
        if current > max_r or current < min_r:  # out of bounds: kube moves into them before reading any metric
            desired = max_r if current > max_r else min_r
            await self.client.patch(res, ref["name"], {"spec": {"replicas": desired}}, ns, sub="scale")
            why = "above Spec.MaxReplicas" if current > max_r else "below Spec.MinReplicas"
            self.recorder.event(hpa, "Normal", "SuccessfulRescale",
                                f"New size: {desired}; reason: Current number of replicas {why}")
            conds.append(_condition("AbleToScale", True, "SucceededRescale",
                                    f"the HPA controller was able to update the target scale to {desired}", old_conds))
            await self._write_status(hpa, {**new_status, "desiredReplicas": desired, "lastScaleTime": now_iso(),
                                           "conditions": conds})
            return
        metric = _resource_metric(hpa)
        try:
            if metric is None:
                raise _MetricError("no Resource metric with a Utilization or AverageValue target (labkit's HPA "
                                   "reads resource metrics only)")
            rec, current_metric = await self._recommend(ns or "default", scale, current, metric)
        except _MetricError as exc:
            conds += [_condition("AbleToScale", True, "SucceededGetScale",
                                 "the HPA controller was able to get the target's current scale", old_conds),
                      _condition("ScalingActive", False, "FailedGetResourceMetric", str(exc), old_conds)]
            self.recorder.event(hpa, "Warning", "FailedGetResourceMetric", str(exc))
            await self._write_status(hpa, {**new_status, "desiredReplicas": current, "conditions": conds})
            return
        down = self._down_window(hpa)
        up = float(((spec.get("behavior") or {}).get("scaleUp") or {}).get("stabilizationWindowSeconds") or 0)
        stable, self.recommendations[key] = stabilize(self.recommendations.get(key, []), time.time(), rec.replicas,
                                                      current, down, up)
        desired, why, message = limit(stable, current, min_r, max_r)
        if desired != current:
            try:
                await self.client.patch(res, ref["name"], {"spec": {"replicas": desired}}, ns, sub="scale")
            except ApiError as exc:
                conds.append(_condition("AbleToScale", False, "FailedUpdateScale",
                                        f"the HPA controller was unable to update the target scale: {exc}", old_conds))
                await self._write_status(hpa, {**new_status, "conditions": conds})
                raise
            direction = "above" if desired > current else "below"
            self.recorder.event(hpa, "Normal", "SuccessfulRescale",
                                f"New size: {desired}; reason: {metric[0]} resource "
                                f"{'utilization (percentage of request)' if metric[1] == 'Utilization' else ''}"
                                f" {direction} target".replace("  ", " "))
            new_status["lastScaleTime"] = now_iso()
            conds.append(_condition("AbleToScale", True, "SucceededRescale",
                                    f"the HPA controller was able to update the target scale to {desired}", old_conds))
        else:
            conds.append(_condition("AbleToScale", True, "ReadyForNewScale",
                                    "recommended size matches current size", old_conds))
        what = "resource utilization (percentage of request)" if metric[1] == "Utilization" else "resource"
        conds.append(_condition("ScalingActive", True, "ValidMetricFound",
                                f"the HPA was able to successfully calculate a replica count from {metric[0]} {what}",
                                old_conds))
        conds.append(_condition("ScalingLimited", why != "DesiredWithinRange", why, message, old_conds))
        await self._write_status(hpa, {**new_status, "desiredReplicas": desired, "currentMetrics": [current_metric],
                                       "conditions": conds})

    def _down_window(self, hpa: dict) -> float:
        sd = ((hpa.get("spec") or {}).get("behavior") or {}).get("scaleDown") or {}
        w = sd.get("stabilizationWindowSeconds")
        return float(self.downscale_stabilization if w is None else w)

    async def _recommend(self, ns: str, scale: dict, current: int, metric: tuple[str, str, float]
                         ) -> tuple[Recommendation, dict]:
        name, kind, target = metric
        selector_text = (scale.get("status") or {}).get("selector") or ""
        try:
            selector = LabelSelector.parse(selector_text)
        except InvalidSelector as exc:
            raise _MetricError(f"the target's selector {selector_text!r} is invalid: {exc}") from None
        if selector.empty:
            raise _MetricError("the target's scale reports no selector")
        pods = [p for p in self.pods.cache.values()
                if p["metadata"].get("namespace") == ns and selector.matches(p["metadata"].get("labels"))
                and not p["metadata"].get("deletionTimestamp")
                and (p.get("status") or {}).get("phase") not in ("Failed", "Succeeded")]
        if not pods:
            raise _MetricError("no pods match the target's selector yet")
        try:
            got = await self.client.request("GET", f"/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods",
                                            params={"labelSelector": selector_text})
        except ApiError as exc:
            raise _MetricError(f"unable to get metrics for resource {name}: unable to fetch metrics from "
                               f"resource metrics API: {exc}") from None
        usage: dict[str, float] = {}
        for item in got.get("items") or []:
            total = 0.0
            for c in item.get("containers") or []:
                q = (c.get("usage") or {}).get(name)
                if q is not None:
                    total += _usage(name, q)
            usage[item["metadata"]["name"]] = total
        samples = []
        for p in pods:
            request = 0
            for c in (p.get("spec") or {}).get("containers") or []:
                q = ((c.get("resources") or {}).get("requests") or {}).get(name)
                if q is None and kind == "Utilization":
                    raise _MetricError(f"failed to get {name} utilization: missing request for {name} in "
                                       f"container {c.get('name')} of Pod {p['metadata']['name']}")
                if q is not None:
                    request += milli_cpu(q) if name == "cpu" else value(q)
            samples.append(PodUsage(usage.get(p["metadata"]["name"]), float(request), is_ready(p)))
        if not any(s.usage is not None for s in samples):
            raise _MetricError(f"unable to get metrics for resource {name}: no metrics returned from resource "
                               "metrics API")
        rec = recommend(current, samples, target, self.tolerance, utilization=kind == "Utilization")
        cur: dict = {}
        if rec.utilization is not None:
            cur["averageUtilization"] = rec.utilization
        if rec.average is not None:
            cur["averageValue"] = f"{int(rec.average)}m" if name == "cpu" else str(int(rec.average))
        return rec, {"type": "Resource", "resource": {"name": name, "current": cur}}

    async def _write_status(self, hpa: dict, status: dict) -> None:
        if status == hpa.get("status"):
            return
        md = hpa["metadata"]
        try:
            await self.client.patch("horizontalpodautoscalers", md["name"], {"status": status},
                                    md.get("namespace"), sub="status")
        except ApiError as exc:
            if not exc.not_found:
                raise


def _usage(name: str, q: str) -> float:
    """A metrics.k8s.io usage in the unit of requests: millicores for cpu (metrics come in nanocores,
    ``123456789n``), bytes otherwise."""
    q = str(q)
    if name == "cpu":
        if q.endswith("n"):
            return int(q[:-1]) / 1e6
        if q.endswith("u"):
            return int(q[:-1]) / 1e3
        return float(milli_cpu(q))
    return float(value(q))


class _MetricError(Exception):
    pass


def _key(obj: dict) -> str:
    md = obj["metadata"]
    return f"{md.get('namespace')}/{md['name']}" if md.get("namespace") else md["name"]
