"""``labkit class status``: per student, what runs and what it costs against the quota, read with
the teacher's credentials; "active" means something of theirs changed in the last 15 minutes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from labkit.classroom import gradebook, state

ACTIVE_WINDOW = timedelta(minutes=15)


def rows(info: dict) -> list[dict]:
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=info["teacher_kubeconfig"])
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    grades = gradebook.read(Path(info["gradebook"]))
    now = datetime.now(UTC)
    out = []
    for s in state.students(info):
        pods = core.list_namespaced_pod(s.namespace).items
        deployments = apps.list_namespaced_deployment(s.namespace).items
        quotas = core.list_namespaced_resource_quota(s.namespace).items
        used, hard = {}, {}
        for q in quotas:
            used.update((q.status.used if q.status else None) or {})
            hard.update((q.status.hard if q.status else None) or q.spec.hard or {})
        stamps = [o.metadata.creation_timestamp for o in [*pods, *deployments] if o.metadata.creation_timestamp]
        last = max(stamps) if stamps else None
        out.append({"student": s.name, "namespace": s.namespace, "size": s.size, "pods": len(pods),
                    "running": sum(1 for p in pods if p.status and p.status.phase == "Running"),
                    "cpu": f"{used.get('requests.cpu', '0')}/{hard.get('requests.cpu', '-')}",
                    "memory": f"{used.get('requests.memory', '0')}/{hard.get('requests.memory', '-')}",
                    "quota_pods": f"{used.get('pods', '0')}/{hard.get('pods', '-')}",
                    "active": bool(last and now - last < ACTIVE_WINDOW),
                    "last": last.strftime("%H:%M:%S") if last else "-",
                    "passed": sum(1 for (who, _), r in grades.items() if who == s.name and r.passed),
                    "exercises": len(info["exercises"])})
    return out


def table(rs: list[dict]) -> str:
    head = f"  {'student':<16} {'active':<7} {'last':<9} {'pods':<8} {'cpu req/quota':<15} " \
           f"{'memory req/quota':<18} {'passed':<7}"
    lines = [head]
    for r in rs:
        lines.append(f"  {r['student']:<16} {'yes' if r['active'] else 'no':<7} {r['last']:<9} "
                     f"{str(r['running']) + '/' + str(r['pods']) + ' run':<8} {r['cpu']:<15} {r['memory']:<18} "
                     f"{r['passed']}/{r['exercises']}")
    return "\n".join(lines)
