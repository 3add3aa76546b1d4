"""The arithmetic of a rolling update, kept pure so tests and labs can step through it.

Kubernetes' rules: during an update there are never more than ``replicas + maxSurge`` pods
and never fewer than ``replicas - maxUnavailable`` available ones. Percentages round up for
surge and down for unavailable; if both come out 0, one pod may be unavailable.
"""

from __future__ import annotations

import json
import math

_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def resolve(value: int | str | None, total: int, round_up: bool, default: str = "25%") -> int:
    """An IntOrString (3 or "25%") as a pod count."""
    v = default if value is None else value
    if isinstance(v, str) and v.endswith("%"):
        frac = int(v[:-1]) * total / 100
        return math.ceil(frac) if round_up else math.floor(frac)
    return int(v)


def surge_and_unavailable(deploy: dict) -> tuple[int, int]:
    spec = deploy.get("spec") or {}
    replicas = int(spec.get("replicas", 1))
    ru = ((spec.get("strategy") or {}).get("rollingUpdate")) or {}
    surge = resolve(ru.get("maxSurge"), replicas, True)
    unavail = resolve(ru.get("maxUnavailable"), replicas, False)
    if surge == 0 and unavail == 0:
        unavail = 1
    return surge, unavail


def new_rs_target(replicas: int, surge: int, total_now: int, new_now: int) -> int:
    """How many replicas the new ReplicaSet may have now (scale up as far as the surge allows)."""
    max_total = replicas + surge
    if total_now >= max_total:
        return new_now
    return min(replicas, new_now + (max_total - total_now))


def old_scale_down_budget(replicas: int, unavailable: int, available_now: int) -> int:
    """How many old replicas may go now without dropping below ``replicas - maxUnavailable`` available."""
    return max(0, available_now - (replicas - unavailable))


def unhealthy_scale_down(olds: list[tuple[int, int]], budget: int) -> list[int]:
    """How many pods each old ReplicaSet ((spec replicas, available), oldest first) may lose because
    they are not available.

    kube-controller-manager's cleanupUnhealthyReplicas: such pods count for nothing, so removing them
    never lowers availability, and a rollout away from a broken template (a rollback from an image
    that cannot be pulled) would otherwise wait on them forever.
    """
    drops = []
    for spec_replicas, available in olds:
        drop = max(0, min(budget, spec_replicas - available))
        budget -= drop
        drops.append(drop)
    return drops


def template_hash(template: dict, collision_count: int = 0) -> str:
    """pod-template-hash: a stable short name for a pod template (FNV-1a over its canonical JSON)."""
    t = json.loads(json.dumps(template))
    (t.get("metadata") or {}).get("labels", {}).pop("pod-template-hash", None)
    data = json.dumps(t, sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += str(collision_count).encode()
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    out = ""
    while h:
        h, r = divmod(h, len(_ALPHABET))
        out += _ALPHABET[r]
    return out or _ALPHABET[0]


def same_template(a: dict, b: dict) -> bool:
    """Equal pod templates, ignoring the pod-template-hash label the controller adds."""
    def clean(t: dict) -> str:
        t = json.loads(json.dumps(t or {}))
        labels = (t.get("metadata") or {}).get("labels")
        if labels is not None:
            labels.pop("pod-template-hash", None)
        for k in ("creationTimestamp",):
            (t.get("metadata") or {}).pop(k, None)
        return json.dumps(t, sort_keys=True)
    return clean(a) == clean(b)
