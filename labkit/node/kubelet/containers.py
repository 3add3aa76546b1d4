"""Translate between the Pod API and the CRI-shaped runtime: specs down, statuses up."""

from __future__ import annotations

import datetime as dt

from labkit.client import quantity
from labkit.oci.resources import Resources
from labkit.runtime.base import ContainerConfig, ContainerState, ContainerStatus, Mount, PodSandboxConfig

POD_UID = "io.kubernetes.pod.uid"
POD_NAME = "io.kubernetes.pod.name"
POD_NS = "io.kubernetes.pod.namespace"
CONTAINER_NAME = "io.kubernetes.container.name"
RESTARTS = "io.kubernetes.container.restartCount"
NODE = "labkit.node"


def ts(t: float | None) -> str | None:
    if not t:
        return None
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sandbox_config(pod: dict, node: str, log_dir: str | None = None) -> PodSandboxConfig:
    md = pod["metadata"]
    return PodSandboxConfig(
        name=md["name"], namespace=md.get("namespace", "default"), uid=md.get("uid", ""),
        hostname=(pod.get("spec") or {}).get("hostname") or md["name"][:63],
        labels={POD_UID: md.get("uid", ""), POD_NAME: md["name"], POD_NS: md.get("namespace", "default"), NODE: node},
        annotations={}, log_directory=log_dir,
    )


def env_of(c: dict, pod: dict, pod_ip: str | None, node: str) -> dict[str, str]:
    """Plain values and the downward-API fields labs use (pod name, namespace, IP, node)."""
    md = pod["metadata"]
    fields = {"metadata.name": md["name"], "metadata.namespace": md.get("namespace", "default"),
              "metadata.uid": md.get("uid", ""), "status.podIP": pod_ip or "", "spec.nodeName": node,
              "status.hostIP": "127.0.0.1"}
    out: dict[str, str] = {}
    for e in c.get("env") or []:
        if "value" in e:
            out[e["name"]] = str(e["value"])
        else:
            ref = ((e.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
            if ref in fields:
                out[e["name"]] = fields[ref]
    return out


def container_config(c: dict, pod: dict, restart: int, mounts: list[Mount], env: dict[str, str],
                     node: str) -> ContainerConfig:
    res = (c.get("resources") or {}).get("limits") or {}
    r = Resources()
    if "cpu" in res:
        r = Resources.from_cpus(quantity.milli_cpu(res["cpu"]) / 1000)
    if "memory" in res:
        r.memory_bytes = quantity.value(res["memory"])
    md = pod["metadata"]
    return ContainerConfig(
        name=c["name"], image=c.get("image", ""), command=list(c.get("command") or []), args=list(c.get("args") or []),
        env=env, working_dir=c.get("workingDir"), mounts=mounts, resources=r,
        labels={POD_UID: md.get("uid", ""), POD_NAME: md["name"], POD_NS: md.get("namespace", "default"),
                CONTAINER_NAME: c["name"], RESTARTS: str(restart), NODE: node},
    )


def restart_count(cs: ContainerStatus) -> int:
    try:
        return int(cs.labels.get(RESTARTS, "0"))
    except ValueError:
        return 0


def state_of(cs: ContainerStatus, runtime: str) -> dict:
    cid = f"{runtime}://{cs.id}"
    if cs.state == ContainerState.RUNNING or (cs.state == ContainerState.UNKNOWN and cs.started_at):
        # UNKNOWN after a start: the process ended a moment ago and its exit is not recorded yet
        return {"running": {"startedAt": ts(cs.started_at)}}
    if cs.state == ContainerState.EXITED:
        t = {"exitCode": cs.exit_code if cs.exit_code is not None else -1,
             "reason": cs.reason or ("Completed" if cs.exit_code == 0 else "Error"),
             "startedAt": ts(cs.started_at), "finishedAt": ts(cs.finished_at), "containerID": cid}
        if cs.message:
            t["message"] = cs.message
        return {"terminated": t}
    return {"waiting": {"reason": "ContainerCreating"}}
