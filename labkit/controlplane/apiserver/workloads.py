"""Defaulting and validation of the workload kinds beyond Deployments: Jobs, CronJobs, DaemonSets, StatefulSets.

The defaults are Kubernetes' own (``SetDefaults_Job`` and friends), so a learner's YAML reads back
as ``kubectl get -o yaml`` shows it on a real cluster. A Job's selector is generated from its uid
at create, as the Job strategy of kube-apiserver does, so that each Job selects only its own pods.
"""

from __future__ import annotations

from typing import Any

from .errors import cause
from .validation import _default_template, _validate_workload

JOB_NAME = "batch.kubernetes.io/job-name"
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"


def default_job_spec(spec: dict) -> None:
    """Job spec defaults: one completion, parallelism 1, six retries, NonIndexed."""
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")


def default_job(obj: dict) -> None:
    """Job defaults, on the spec and on its pod template."""
    _default_template(obj)
    default_job_spec(obj["spec"])


def generate_job_selector(job: dict) -> None:
    """Label the template with the Job's uid and name and select on the uid (unless manualSelector).

    Runs once the uid is known, at create: kube-apiserver's Job strategy does the same.
    """
    spec = job.get("spec") or {}
    if spec.get("manualSelector"):
        return
    md = job["metadata"]
    labels = spec.setdefault("template", {}).setdefault("metadata", {}).setdefault("labels", {})
    labels.update({CONTROLLER_UID: md["uid"], JOB_NAME: md["name"], "controller-uid": md["uid"],
                   "job-name": md["name"]})
    spec["selector"] = {"matchLabels": {CONTROLLER_UID: md["uid"]}}


def _restart_policy(tmpl: Any, path: str, allowed: tuple[str, ...]) -> list[dict]:
    policy = ((tmpl or {}).get("spec") or {}).get("restartPolicy") if isinstance(tmpl, dict) else None
    if policy not in allowed:
        return [cause(f"{path}.spec.restartPolicy", f'Unsupported value: "{policy}": supported values: '
                      + ", ".join(f'"{p}"' for p in allowed), "FieldValueNotSupported")]
    return []


def _non_negative(spec: dict, path: str, *names: str) -> list[dict]:
    out = []
    for n in names:
        v = spec.get(n)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            out.append(cause(f"{path}.{n}", f"Invalid value: {v}: must be greater than or equal to 0"))
    return out


def _validate_job_spec(spec: Any, path: str, old_spec: dict | None, created: bool) -> list[dict]:
    if not isinstance(spec, dict):
        return [cause(path, "Required value", "FieldValueRequired")]
    out = _non_negative(spec, path, "parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished")
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None and (not isinstance(ads, int) or ads <= 0):
        out.append(cause(f"{path}.activeDeadlineSeconds", f"Invalid value: {ads}: must be greater than 0"))
    out += _restart_policy(spec.get("template"), f"{path}.template", ("OnFailure", "Never"))
    if created or spec.get("manualSelector"):  # the selector exists (generated or the user's): check it
        wrapped = {"spec": {k: v for k, v in spec.items() if k != "replicas"}}
        out += [{**c, "field": c["field"].replace("spec.", f"{path}.", 1)}
                for c in _validate_workload(wrapped, {"spec": old_spec} if old_spec is not None else None)]
    elif isinstance(spec.get("template"), dict):
        from .validation import _containers
        out += _containers(spec["template"].get("spec"), f"{path}.template.spec")
    if old_spec is not None and old_spec.get("template") != spec.get("template"):
        out.append(cause(f"{path}.template", "Invalid value: field is immutable", "FieldValueInvalid"))
    return out


def validate_job(obj: dict, old: dict | None) -> list[dict]:
    """Counts not negative, a Never/OnFailure template, and a template that never changes."""
    return _validate_job_spec(obj.get("spec"), "spec", (old or {}).get("spec") if old else None,
                              created=old is not None)


def default_cronjob(obj: dict) -> None:
    """CronJob defaults: Allow concurrency, keep 3 successful and 1 failed Job, not suspended."""
    spec = obj.setdefault("spec", {})
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    tmpl = spec.get("jobTemplate")
    if isinstance(tmpl, dict):
        _default_template(tmpl)
        default_job_spec(tmpl["spec"])


def validate_cronjob(obj: dict, old: dict | None) -> list[dict]:
    """A schedule cron can read, a known concurrencyPolicy and a valid Job template."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [cause("spec", "Required value", "FieldValueRequired")]
    out = _non_negative(spec, "spec", "successfulJobsHistoryLimit", "failedJobsHistoryLimit",
                        "startingDeadlineSeconds")
    schedule = spec.get("schedule")
    if not schedule:
        out.append(cause("spec.schedule", "Required value", "FieldValueRequired"))
    else:
        from labkit.controlplane.controllers.cronschedule import InvalidSchedule, parse_schedule
        try:
            parse_schedule(str(schedule))
        except InvalidSchedule as exc:
            out.append(cause("spec.schedule", f'Invalid value: "{schedule}": {exc}'))
    if spec.get("concurrencyPolicy") not in ("Allow", "Forbid", "Replace"):
        out.append(cause("spec.concurrencyPolicy", f'Unsupported value: "{spec.get("concurrencyPolicy")}": '
                         'supported values: "Allow", "Forbid", "Replace"', "FieldValueNotSupported"))
    tmpl = spec.get("jobTemplate")
    if not isinstance(tmpl, dict):
        out.append(cause("spec.jobTemplate", "Required value", "FieldValueRequired"))
    else:
        out += _validate_job_spec(tmpl.get("spec"), "spec.jobTemplate.spec", None, created=False)
    return out


def default_daemonset(obj: dict) -> None:
    """DaemonSet defaults: RollingUpdate with maxUnavailable 1 and maxSurge 0, history 10."""
    _default_template(obj)
    spec = obj["spec"]
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = strategy.setdefault("rollingUpdate", {})
        ru.setdefault("maxUnavailable", 1)
        ru.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)


def validate_daemonset(obj: dict, old: dict | None) -> list[dict]:
    """A selector matching the template, an Always restart policy, a known update strategy."""
    out = _validate_workload(obj, old)
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    out += _restart_policy(spec.get("template"), "spec.template", ("Always",))
    typ = (spec.get("updateStrategy") or {}).get("type")
    if typ not in ("RollingUpdate", "OnDelete"):
        out.append(cause("spec.updateStrategy.type", f'Unsupported value: "{typ}": supported values: '
                         '"OnDelete", "RollingUpdate"', "FieldValueNotSupported"))
    return out


def default_statefulset(obj: dict) -> None:
    """StatefulSet defaults: 1 replica, OrderedReady, RollingUpdate from partition 0, claims retained."""
    _default_template(obj)
    spec = obj["spec"]
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
    for claim in spec.get("volumeClaimTemplates") or []:
        if isinstance(claim, dict):
            claim.setdefault("apiVersion", "v1")
            claim.setdefault("kind", "PersistentVolumeClaim")
            claim.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")


def validate_statefulset(obj: dict, old: dict | None) -> list[dict]:
    """A selector matching the template, named claim templates, a known pod management policy."""
    out = _validate_workload(obj, old)
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    out += _restart_policy(spec.get("template"), "spec.template", ("Always",))
    if spec.get("podManagementPolicy") not in ("OrderedReady", "Parallel"):
        out.append(cause("spec.podManagementPolicy", f'Unsupported value: "{spec.get("podManagementPolicy")}": '
                         'supported values: "OrderedReady", "Parallel"', "FieldValueNotSupported"))
    for i, claim in enumerate(spec.get("volumeClaimTemplates") or []):
        if not isinstance(claim, dict) or not (claim.get("metadata") or {}).get("name"):
            out.append(cause(f"spec.volumeClaimTemplates[{i}].metadata.name", "Required value",
                             "FieldValueRequired"))
    if old is not None:
        for field in ("volumeClaimTemplates", "serviceName", "podManagementPolicy"):
            if (old.get("spec") or {}).get(field) != spec.get(field):
                out.append(cause("spec", "Forbidden: updates to statefulset spec for fields other than "
                                 "'replicas', 'ordinals', 'template', 'updateStrategy', "
                                 "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                                 "FieldValueForbidden"))
                break
    return out
