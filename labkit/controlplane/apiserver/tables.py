"""Server-side printing: the ``Table`` that ``kubectl get`` asks for.

kubectl does not know how to print a pod: it asks the server for ``as=Table`` and prints the cells.
The column sets below are the ones kube-apiserver uses; ``priority: 1`` columns appear only with
``-o wide``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from labkit.client.selectors import InvalidSelector, format_selector
from labkit.client.timestamps import parse_time

from . import snapshots

Column = tuple[str, str, int]  # name, type, priority
RowFn = Callable[[dict, float], list]


def human_duration(seconds: float) -> str:
    """kubectl's short age format: 45s, 3m12s, 17m, 5h3m, 2d4h, 340d ..."""
    if seconds < -1:
        return "<invalid>"
    s = max(int(seconds), 0)
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    if h < 24 * 8:
        return f"{h // 24}d{h % 24}h" if h % 24 else f"{h // 24}d"
    if h < 24 * 365 * 2:
        return f"{h // 24}d"
    if h < 24 * 365 * 8:
        d = (h // 24) % 365
        return f"{h // 24 // 365}y{d}d" if d else f"{h // 24 // 365}y"
    return f"{h // 24 // 365}y"


def age(obj: dict, now: float) -> str:
    """The AGE cell: how long ago the object was created."""
    t = parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
    return "<unknown>" if t is None else human_duration(now - t)


def _none(v: Any) -> str:
    return str(v) if v not in (None, "", []) else "<none>"


def pod_status(pod: dict) -> tuple[str, int, int, int]:
    """(STATUS, ready containers, total containers, restarts) the way kubectl shows them."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    total = len(spec.get("containers") or [])
    reason = status.get("reason") or status.get("phase") or "Pending"
    ready = restarts = 0
    running = False
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        restarts += cs.get("restartCount", 0)
        st = cs.get("state") or {}
        if "terminated" in st and st["terminated"].get("exitCode", 0) == 0:
            continue
        if "terminated" in st:
            reason = "Init:" + (st["terminated"].get("reason") or f"ExitCode:{st['terminated'].get('exitCode')}")
        elif st.get("waiting", {}).get("reason") not in (None, "PodInitializing"):
            reason = "Init:" + st["waiting"]["reason"]
        else:
            reason = f"Init:{i}/{len(spec.get('initContainers') or [])}"
        break
    else:
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += cs.get("restartCount", 0)
            st = cs.get("state") or {}
            if st.get("waiting", {}).get("reason"):
                reason = st["waiting"]["reason"]
            elif "terminated" in st:
                t = st["terminated"]
                reason = t.get("reason") or (f"Signal:{t['signal']}" if t.get("signal")
                                             else f"ExitCode:{t.get('exitCode', 0)}")
            elif "running" in st and cs.get("ready"):
                running = True
                ready += 1
        if reason == "Completed" and running:
            conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
            reason = "Running" if conds.get("Ready") == "True" else "NotReady"
    if (pod.get("metadata") or {}).get("deletionTimestamp") and status.get("reason") != "NodeLost":
        reason = "Terminating"
    return reason, ready, total, restarts


def _last_restart(pod: dict) -> float | None:
    """When a container of the pod last finished (for the "RESTARTS" column's "(5m ago)")."""
    latest = None
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        t = parse_time(((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
        if t is not None and (latest is None or t > latest):
            latest = t
    return latest


def _pod_row(pod: dict, now: float) -> list:
    reason, ready, total, restarts = pod_status(pod)
    last = _last_restart(pod) if restarts else None
    restarts_cell: int | str = f"{restarts} ({human_duration(now - last)} ago)" if last is not None else restarts
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    gates = spec.get("readinessGates") or []
    gate_cell = "<none>"
    if gates:
        conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        ok = sum(1 for g in gates if conds.get(g.get("conditionType")) == "True")
        gate_cell = f"{ok}/{len(gates)}"
    return [pod["metadata"]["name"], f"{ready}/{total}", reason, restarts_cell, age(pod, now),
            _none(status.get("podIP")), _none(spec.get("nodeName")),
            _none(status.get("nominatedNodeName")), gate_cell]


def _node_row(node: dict, now: float) -> list:
    status, spec = node.get("status") or {}, node.get("spec") or {}
    conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    ready = {"True": "Ready", "False": "NotReady"}.get(conds.get("Ready"), "Unknown")
    if spec.get("unschedulable"):
        ready += ",SchedulingDisabled"
    labels = node["metadata"].get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/") and "/" in k)
    roles += [v for k, v in labels.items() if k == "kubernetes.io/role"]
    info = status.get("nodeInfo") or {}
    addrs = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    return [node["metadata"]["name"], ready, ",".join(roles) or "<none>", age(node, now),
            info.get("kubeletVersion", ""), _none(addrs.get("InternalIP")), _none(addrs.get("ExternalIP")),
            _none(info.get("osImage")), _none(info.get("kernelVersion")), _none(info.get("containerRuntimeVersion"))]


def _containers_cells(tmpl_spec: dict) -> list[str]:
    cs = tmpl_spec.get("containers") or []
    return [",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)]


def _selector_cell(sel: dict | None) -> str:
    try:
        return format_selector(sel) or "<none>"
    except InvalidSelector:
        return "<invalid>"


def _deployment_row(d: dict, now: float) -> list:
    spec, status = d.get("spec") or {}, d.get("status") or {}
    tmpl = (spec.get("template") or {}).get("spec") or {}
    return [d["metadata"]["name"], f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
            status.get("updatedReplicas", 0), status.get("availableReplicas", 0), age(d, now),
            *_containers_cells(tmpl), _selector_cell(spec.get("selector"))]


def _replicaset_row(rs: dict, now: float) -> list:
    spec, status = rs.get("spec") or {}, rs.get("status") or {}
    tmpl = (spec.get("template") or {}).get("spec") or {}
    return [rs["metadata"]["name"], spec.get("replicas", 0), status.get("replicas", 0),
            status.get("readyReplicas", 0), age(rs, now), *_containers_cells(tmpl),
            _selector_cell(spec.get("selector"))]


def _job_status(job: dict) -> str:
    """The STATUS column of ``kubectl get jobs`` (kubectl 1.28+): the Job's terminal or current state."""
    conds = {c.get("type"): c.get("status") for c in (job.get("status") or {}).get("conditions") or []}
    for typ in ("Failed", "Complete", "Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if conds.get(typ) == "True":
            return typ
    if (job.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    return "Running"


def _job_row(job: dict, now: float) -> list:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    succeeded = status.get("succeeded", 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif (spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    start, end = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
    duration = "" if start is None else human_duration((end if end is not None else now) - start)
    tmpl = (spec.get("template") or {}).get("spec") or {}
    return [job["metadata"]["name"], _job_status(job), completions, duration, age(job, now),
            *_containers_cells(tmpl), _selector_cell(spec.get("selector"))]


def _cronjob_row(cj: dict, now: float) -> list:
    spec, status = cj.get("spec") or {}, cj.get("status") or {}
    last = parse_time(status.get("lastScheduleTime"))
    job_spec = ((spec.get("jobTemplate") or {}).get("spec") or {})
    tmpl = (job_spec.get("template") or {}).get("spec") or {}
    return [cj["metadata"]["name"], spec.get("schedule", ""), spec.get("timeZone") or "<none>",
            bool(spec.get("suspend")), len(status.get("active") or []),
            "<none>" if last is None else human_duration(now - last), age(cj, now),
            *_containers_cells(tmpl), _selector_cell(job_spec.get("selector"))]


def _daemonset_row(ds: dict, now: float) -> list:
    spec, status = ds.get("spec") or {}, ds.get("status") or {}
    tmpl = (spec.get("template") or {}).get("spec") or {}
    node_selector = ",".join(f"{k}={v}" for k, v in sorted((tmpl.get("nodeSelector") or {}).items()))
    return [ds["metadata"]["name"], status.get("desiredNumberScheduled", 0), status.get("currentNumberScheduled", 0),
            status.get("numberReady", 0), status.get("updatedNumberScheduled", 0), status.get("numberAvailable", 0),
            node_selector or "<none>", age(ds, now), *_containers_cells(tmpl), _selector_cell(spec.get("selector"))]


def _statefulset_row(sts: dict, now: float) -> list:
    spec, status = sts.get("spec") or {}, sts.get("status") or {}
    tmpl = (spec.get("template") or {}).get("spec") or {}
    return [sts["metadata"]["name"], f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}", age(sts, now),
            *_containers_cells(tmpl)]


def _service_row(s: dict, now: float) -> list:
    spec = s.get("spec") or {}
    ports = []
    for p in spec.get("ports") or []:
        port = f"{p.get('port')}"
        if p.get("nodePort"):
            port += f":{p['nodePort']}"
        ports.append(f"{port}/{p.get('protocol', 'TCP')}")
    ext = ",".join(spec.get("externalIPs") or []) or ("<pending>" if spec.get("type") == "LoadBalancer" else "<none>")
    sel = spec.get("selector") or {}
    return [s["metadata"]["name"], spec.get("type", "ClusterIP"), spec.get("clusterIP") or "<none>", ext,
            ",".join(ports) or "<none>", age(s, now),
            ",".join(f"{k}={v}" for k, v in sorted(sel.items())) or "<none>"]


def _event_row(e: dict, now: float) -> list:
    last = parse_time(e.get("lastTimestamp") or e.get("eventTime") or e["metadata"].get("creationTimestamp"))
    first = parse_time(e.get("firstTimestamp") or e.get("eventTime"))
    inv = e.get("involvedObject") or {}
    src = e.get("source") or {}
    return [human_duration(now - last) if last else "<unknown>", e.get("type", ""), e.get("reason", ""),
            f"{(inv.get('kind') or '').lower()}/{inv.get('name', '')}", inv.get("fieldPath", ""),
            ", ".join(x for x in (src.get("component"), src.get("host")) if x) or e.get("reportingComponent", ""),
            e.get("message", ""), human_duration(now - first) if first else "<unknown>",
            e.get("count", 1), e["metadata"]["name"]]


def _namespace_row(ns: dict, now: float) -> list:
    return [ns["metadata"]["name"], (ns.get("status") or {}).get("phase", "Active"), age(ns, now)]


def _data_row(obj: dict, now: float) -> list:
    return [obj["metadata"]["name"], len(obj.get("data") or {}) + len(obj.get("binaryData") or {}), age(obj, now)]


def _secret_row(obj: dict, now: float) -> list:
    return [obj["metadata"]["name"], obj.get("type", "Opaque"), len(obj.get("data") or {}), age(obj, now)]


def _endpoints_row(obj: dict, now: float) -> list:
    eps = []
    for sub in obj.get("subsets") or []:
        for a in sub.get("addresses") or []:
            for p in sub.get("ports") or [{}]:
                eps.append(f"{a.get('ip')}:{p.get('port')}" if p.get("port") else a.get("ip", ""))
    cell = ",".join(eps[:3]) + (f" + {len(eps) - 3} more..." if len(eps) > 3 else "")
    return [obj["metadata"]["name"], cell or "<none>", age(obj, now)]


def _lease_row(obj: dict, now: float) -> list:
    return [obj["metadata"]["name"], (obj.get("spec") or {}).get("holderIdentity", ""), age(obj, now)]


def _pv_row(pv: dict, now: float) -> list:
    spec, status = pv.get("spec") or {}, pv.get("status") or {}
    claim = spec.get("claimRef") or {}
    return [pv["metadata"]["name"], (spec.get("capacity") or {}).get("storage", ""),
            _modes(spec.get("accessModes")), spec.get("persistentVolumeReclaimPolicy", ""),
            status.get("phase", ""), f"{claim['namespace']}/{claim['name']}" if claim.get("name") else "",
            spec.get("storageClassName", ""), status.get("reason", ""), age(pv, now),
            spec.get("volumeMode", "Filesystem")]


def _modes(modes: list | None) -> str:
    short = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}
    return ",".join(short.get(m, m) for m in modes or [])


def _pvc_row(pvc: dict, now: float) -> list:
    spec, status = pvc.get("spec") or {}, pvc.get("status") or {}
    return [pvc["metadata"]["name"], status.get("phase", ""), spec.get("volumeName", ""),
            (status.get("capacity") or {}).get("storage", ""), _modes(status.get("accessModes")),
            spec.get("storageClassName", ""), age(pvc, now), spec.get("volumeMode", "Filesystem")]


def _sc_row(sc: dict, now: float) -> list:
    name = sc["metadata"]["name"]
    if (sc["metadata"].get("annotations") or {}).get("storageclass.kubernetes.io/is-default-class") == "true":
        name += " (default)"
    return [name, sc.get("provisioner", ""), sc.get("reclaimPolicy", "Delete"),
            sc.get("volumeBindingMode", "Immediate"), bool(sc.get("allowVolumeExpansion", False)), age(sc, now)]


def _crd_row(crd: dict, now: float) -> list:
    return [crd["metadata"]["name"], crd["metadata"].get("creationTimestamp", "")]


def _pc_row(pc: dict, now: float) -> list:
    return [pc["metadata"]["name"], pc.get("value", 0), bool(pc.get("globalDefault", False)), age(pc, now),
            pc.get("preemptionPolicy", "")]


def _quota_row(q: dict, now: float) -> list:
    """REQUEST and LIMIT as kubectl prints them: ``pods: 1/4, requests.cpu: 500m/1``."""
    status = q.get("status") or {}
    hard, used = status.get("hard") or {}, status.get("used") or {}
    pairs = {k: f"{k}: {used.get(k, '0')}/{v}" for k, v in sorted(hard.items())}
    request = ", ".join(v for k, v in pairs.items() if not k.startswith("limits."))
    limit = ", ".join(v for k, v in pairs.items() if k.startswith("limits."))
    return [q["metadata"]["name"], age(q, now), request, limit]


def _ingress_row(ing: dict, now: float) -> list:
    """HOSTS: the first three and "+ N more...", "*" when no rule names a host; PORTS: 80, and 443 with TLS."""
    spec = ing.get("spec") or {}
    hosts = [r["host"] for r in spec.get("rules") or [] if isinstance(r, dict) and r.get("host")]
    shown = ",".join(hosts[:3]) + (f" + {len(hosts) - 3} more..." if len(hosts) > 3 else "")
    lb = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    address = ",".join(x.get("ip") or x.get("hostname") or "" for x in lb if isinstance(x, dict))
    return [ing["metadata"]["name"], spec.get("ingressClassName") or "<none>", shown or "*", address,
            "80, 443" if spec.get("tls") else "80", age(ing, now)]


def _ingressclass_row(ic: dict, now: float) -> list:
    spec = ic.get("spec") or {}
    params = spec.get("parameters")
    shown = "<none>"
    if isinstance(params, dict):
        shown = params.get("kind", "") + (f".{params['apiGroup']}" if params.get("apiGroup") else "")
        shown += f"/{params.get('name', '')}"
    return [ic["metadata"]["name"], spec.get("controller", ""), shown, age(ic, now)]


def _endpointslice_row(es: dict, now: float) -> list:
    ports = ",".join(str(p.get("port")) for p in es.get("ports") or [] if p.get("port")) or "<unset>"
    addrs = [a for e in es.get("endpoints") or [] for a in e.get("addresses") or []]
    shown = ",".join(addrs[:3]) + (f" + {len(addrs) - 3} more..." if len(addrs) > 3 else "")
    return [es["metadata"]["name"], es.get("addressType", ""), ports, shown or "<unset>", age(es, now)]


def _default_row(obj: dict, now: float) -> list:
    return [obj["metadata"]["name"], age(obj, now)]


S, N, B = "string", "integer", "boolean"
PRINTERS: dict[str, tuple[list[Column], RowFn]] = {
    "pods": ([("Name", S, 0), ("Ready", S, 0), ("Status", S, 0), ("Restarts", S, 0), ("Age", S, 0),
              ("IP", S, 1), ("Node", S, 1), ("Nominated Node", S, 1), ("Readiness Gates", S, 1)], _pod_row),
    "nodes": ([("Name", S, 0), ("Status", S, 0), ("Roles", S, 0), ("Age", S, 0), ("Version", S, 0),
               ("Internal-IP", S, 1), ("External-IP", S, 1), ("OS-Image", S, 1), ("Kernel-Version", S, 1),
               ("Container-Runtime", S, 1)], _node_row),
    "deployments": ([("Name", S, 0), ("Ready", S, 0), ("Up-to-date", N, 0), ("Available", N, 0), ("Age", S, 0),
                     ("Containers", S, 1), ("Images", S, 1), ("Selector", S, 1)], _deployment_row),
    "replicasets": ([("Name", S, 0), ("Desired", N, 0), ("Current", N, 0), ("Ready", N, 0), ("Age", S, 0),
                     ("Containers", S, 1), ("Images", S, 1), ("Selector", S, 1)], _replicaset_row),
    "jobs": ([("Name", S, 0), ("Status", S, 0), ("Completions", S, 0), ("Duration", S, 0), ("Age", S, 0),
              ("Containers", S, 1), ("Images", S, 1), ("Selector", S, 1)], _job_row),
    "cronjobs": ([("Name", S, 0), ("Schedule", S, 0), ("Timezone", S, 0), ("Suspend", B, 0), ("Active", N, 0),
                  ("Last Schedule", S, 0), ("Age", S, 0), ("Containers", S, 1), ("Images", S, 1),
                  ("Selector", S, 1)], _cronjob_row),
    "daemonsets": ([("Name", S, 0), ("Desired", N, 0), ("Current", N, 0), ("Ready", N, 0), ("Up-to-date", N, 0),
                    ("Available", N, 0), ("Node Selector", S, 0), ("Age", S, 0), ("Containers", S, 1),
                    ("Images", S, 1), ("Selector", S, 1)], _daemonset_row),
    "statefulsets": ([("Name", S, 0), ("Ready", S, 0), ("Age", S, 0), ("Containers", S, 1), ("Images", S, 1)],
                     _statefulset_row),
    "services": ([("Name", S, 0), ("Type", S, 0), ("Cluster-IP", S, 0), ("External-IP", S, 0),
                  ("Port(s)", S, 0), ("Age", S, 0), ("Selector", S, 1)], _service_row),
    "events": ([("Last Seen", S, 0), ("Type", S, 0), ("Reason", S, 0), ("Object", S, 0), ("Subobject", S, 1),
                ("Source", S, 1), ("Message", S, 0), ("First Seen", S, 1), ("Count", S, 1), ("Name", S, 1)],
               _event_row),
    "namespaces": ([("Name", S, 0), ("Status", S, 0), ("Age", S, 0)], _namespace_row),
    "configmaps": ([("Name", S, 0), ("Data", S, 0), ("Age", S, 0)], _data_row),
    "secrets": ([("Name", S, 0), ("Type", S, 0), ("Data", S, 0), ("Age", S, 0)], _secret_row),
    "endpoints": ([("Name", S, 0), ("Endpoints", S, 0), ("Age", S, 0)], _endpoints_row),
    "leases": ([("Name", S, 0), ("Holder", S, 0), ("Age", S, 0)], _lease_row),
    "persistentvolumes": ([("Name", S, 0), ("Capacity", S, 0), ("Access Modes", S, 0), ("Reclaim Policy", S, 0),
                           ("Status", S, 0), ("Claim", S, 0), ("StorageClass", S, 0), ("Reason", S, 0),
                           ("Age", S, 0), ("VolumeMode", S, 1)], _pv_row),
    "persistentvolumeclaims": ([("Name", S, 0), ("Status", S, 0), ("Volume", S, 0), ("Capacity", S, 0),
                                ("Access Modes", S, 0), ("StorageClass", S, 0), ("Age", S, 0),
                                ("VolumeMode", S, 1)], _pvc_row),
    "storageclasses": ([("Name", S, 0), ("Provisioner", S, 0), ("ReclaimPolicy", S, 0),
                        ("VolumeBindingMode", S, 0), ("AllowVolumeExpansion", B, 0), ("Age", S, 0)], _sc_row),
    "customresourcedefinitions": ([("Name", S, 0), ("Created At", "date", 0)], _crd_row),
    "priorityclasses": ([("Name", S, 0), ("Value", N, 0), ("Global-Default", B, 0), ("Age", S, 0),
                         ("PreemptionPolicy", S, 1)], _pc_row),
    "resourcequotas": ([("Name", S, 0), ("Age", S, 0), ("Request", S, 0), ("Limit", S, 0)], _quota_row),
    "limitranges": ([("Name", S, 0), ("Created At", "date", 0)], _crd_row),
}
PRINTERS["ingresses"] = ([("Name", S, 0), ("Class", S, 0), ("Hosts", S, 0), ("Address", S, 0), ("Ports", S, 0),
                          ("Age", S, 0)], _ingress_row)
PRINTERS["ingressclasses"] = ([("Name", S, 0), ("Controller", S, 0), ("Parameters", S, 0), ("Age", S, 0)],
                              _ingressclass_row)
PRINTERS["endpointslices"] = ([("Name", S, 0), ("AddressType", S, 0), ("Ports", S, 0), ("Endpoints", S, 0),
                               ("Age", S, 0)], _endpointslice_row)


def _hpa_targets(hpa: dict) -> str:
    """TARGETS as kubectl 1.30+ prints it: ``cpu: 42%/50%``, ``<unknown>`` before the first reading."""
    spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
    current = {(m.get("resource") or {}).get("name"): (m.get("resource") or {}).get("current") or {}
               for m in status.get("currentMetrics") or [] if m.get("type") == "Resource"}
    shown = []
    for m in spec.get("metrics") or []:
        if m.get("type") != "Resource":
            shown.append(f"{m.get('type', '?')}: <unknown>")
            continue
        res = m.get("resource") or {}
        target, cur = res.get("target") or {}, current.get(res.get("name")) or {}
        if target.get("type") == "Utilization":
            now = f"{cur['averageUtilization']}%" if cur.get("averageUtilization") is not None else "<unknown>"
            shown.append(f"{res.get('name')}: {now}/{target.get('averageUtilization')}%")
        else:
            now = cur.get("averageValue") or "<unknown>"
            shown.append(f"{res.get('name')}: {now}/{target.get('averageValue') or target.get('value')}")
    if len(shown) > 2:
        return ", ".join(shown[:2]) + f" + {len(shown) - 2} more..."
    return ", ".join(shown) or "<none>"


def _hpa_row(hpa: dict, now: float) -> list:
    spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    return [hpa["metadata"]["name"], f"{ref.get('kind', '')}/{ref.get('name', '')}", _hpa_targets(hpa),
            spec.get("minReplicas", 1) if spec.get("minReplicas") is not None else "<unset>",
            spec.get("maxReplicas", 0), status.get("currentReplicas", 0), age(hpa, now)]


PRINTERS["horizontalpodautoscalers"] = ([("Name", S, 0), ("Reference", S, 0), ("Targets", S, 0),
                                         ("MinPods", S, 0), ("MaxPods", N, 0), ("Replicas", N, 0), ("Age", S, 0)],
                                        _hpa_row)
DEFAULT_PRINTER: tuple[list[Column], RowFn] = ([("Name", S, 0), ("Age", S, 0)], _default_row)


def printer_key(rt: Any) -> str:
    """The PRINTERS key of a served resource: its plural; "<version>/<plural>.<group>" for a custom one."""
    return f"{rt.version}/{rt.segment}" if rt.custom else rt.plural


def column_definitions(resource: str) -> list[dict]:
    """The Table's column definitions for a resource (priority 1 = only with -o wide)."""
    cols, _ = PRINTERS.get(resource, DEFAULT_PRINTER)
    return [{"name": n, "type": t, "format": "name" if n == "Name" else "", "description": n, "priority": p}
            for n, t, p in cols]


def partial_metadata(obj: dict) -> dict:
    """The row's object: metadata only, enough for -A and --show-labels."""
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def row(resource: str, obj: dict, include: str = "Metadata", now: float | None = None) -> dict:
    """One Table row: the printed cells and the object (or its metadata) it came from."""
    _, fn = PRINTERS.get(resource, DEFAULT_PRINTER)
    r: dict[str, Any] = {"cells": fn(obj, time.time() if now is None else now)}
    if include == "Object":
        r["object"] = obj
    elif include != "None":
        r["object"] = partial_metadata(obj)
    return r


def table(resource: str, objs: list[dict], meta: dict, include: str = "Metadata", headers: bool = True) -> dict:
    """A meta.k8s.io/v1 Table of the objects, as ``kubectl get`` asks for."""
    now = time.time()
    t: dict[str, Any] = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta}
    if headers:
        t["columnDefinitions"] = column_definitions(resource)
    t["rows"] = [row(resource, o, include, now) for o in objs]
    return t

# CSI snapshots (issue 14, backup): the external snapshotter CRDs' printer columns
PRINTERS["volumesnapshots"] = ([("Name", S, 0), ("ReadyToUse", B, 0), ("SourcePVC", S, 0),
                                ("SourceSnapshotContent", S, 0), ("RestoreSize", S, 0), ("SnapshotClass", S, 0),
                                ("SnapshotContent", S, 0), ("CreationTime", S, 0), ("Age", S, 0)],
                               lambda o, now: snapshots.volumesnapshot_row(o, now, age))
PRINTERS["volumesnapshotcontents"] = ([("Name", S, 0), ("ReadyToUse", B, 0), ("RestoreSize", N, 0),
                                       ("DeletionPolicy", S, 0), ("Driver", S, 0), ("VolumeSnapshotClass", S, 0),
                                       ("VolumeSnapshot", S, 0), ("VolumeSnapshotNamespace", S, 0), ("Age", S, 0)],
                                      lambda o, now: snapshots.volumesnapshotcontent_row(o, now, age))
PRINTERS["volumesnapshotclasses"] = ([("Name", S, 0), ("Driver", S, 0), ("DeletionPolicy", S, 0), ("Age", S, 0)],
                                     lambda o, now: snapshots.volumesnapshotclass_row(o, now, age))
