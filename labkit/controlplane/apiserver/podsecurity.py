"""Pod Security admission: a namespace's ``pod-security.kubernetes.io/enforce`` label refuses pods
that break the Pod Security Standards, with kube-apiserver's "violates PodSecurity" message.

This is what makes a shared cluster safe to hand to students: in a namespace labelled
``baseline`` a pod cannot use the host's namespaces, a ``hostPath`` volume, ``privileged`` or
added capabilities, which are the ways to root on the machine that runs the kubelet. Only
``enforce`` is implemented (not ``warn`` or ``audit``), on pod creation, at the latest version of
the standards.
"""

from __future__ import annotations

from typing import Any

from .codec import decode
from .errors import StatusError

LABEL = "pod-security.kubernetes.io/enforce"
LEVELS = ("privileged", "baseline", "restricted")
BASELINE_CAPS = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
                 "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                      "projected", "secret"}
VOLUME_TYPES = ("hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi", "glusterfs",
                "rbd", "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile", "vsphereVolume", "quobyte",
                "azureDisk", "portworxVolume", "photonPersistentDisk", "scaleIO", "storageos", *RESTRICTED_VOLUMES)


def _names(kind: str, names: list[str]) -> str:
    quoted = ", ".join(f'"{n}"' for n in names)
    return f'{kind}s {quoted}' if len(names) > 1 else f"{kind} {quoted}"


def _containers(spec: dict) -> list[dict]:
    return [c for key in ("initContainers", "containers", "ephemeralContainers") for c in spec.get(key) or []
            if isinstance(c, dict)]


def _sc(c: dict) -> dict:
    return c.get("securityContext") or {}


def baseline(spec: dict) -> list[str]:
    """The baseline policy's checks, each as ``reason (detail)``."""
    out = []
    containers = _containers(spec)
    host = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
    if host:
        out.append(f"host namespaces ({', '.join(host)})")
    priv = [c.get("name", "") for c in containers if _sc(c).get("privileged")]
    if priv:
        out.append(f"privileged ({_names('container', priv)} must not set securityContext.privileged=true)")
    caps = []
    for c in containers:
        bad = [x for x in (_sc(c).get("capabilities") or {}).get("add") or [] if x not in BASELINE_CAPS]
        if bad:
            listed = ", ".join(f'"{x}"' for x in bad)
            caps.append(f'container "{c.get("name", "")}" must not include {listed} in securityContext.capabilities.add')
    if caps:
        out.append(f"non-default capabilities ({'; '.join(caps)})")
    host_path = [v.get("name", "") for v in spec.get("volumes") or [] if isinstance(v, dict) and "hostPath" in v]
    if host_path:
        out.append(f"hostPath volumes ({_names('volume', host_path)})")
    ports = []
    for c in containers:
        used = [str(p["hostPort"]) for p in c.get("ports") or [] if isinstance(p, dict) and p.get("hostPort")]
        if used:
            ports.append(f'{_names("container", [c.get("name", "")])} uses hostPort{"s" if len(used) > 1 else ""} '
                         + ", ".join(used))
    if ports:
        out.append(f"hostPort ({'; '.join(ports)})")
    proc = [c.get("name", "") for c in containers if _sc(c).get("procMount") not in (None, "Default")]
    if proc:
        out.append(f"procMount ({_names('container', proc)} must not set securityContext.procMount)")
    seccomp = (spec.get("securityContext") or {}).get("seccompProfile") or {}
    unconfined = ["pod"] if seccomp.get("type") == "Unconfined" else []
    unconfined += [f'container "{c.get("name", "")}"' for c in containers
                   if (_sc(c).get("seccompProfile") or {}).get("type") == "Unconfined"]
    if unconfined:
        out.append(f'seccompProfile ({", ".join(unconfined)} must not set securityContext.seccompProfile.type to '
                   '"Unconfined")')
    return out


def restricted(spec: dict) -> list[str]:
    """The restricted policy's checks on top of baseline."""
    out = baseline(spec)
    containers = _containers(spec)
    vols = []
    for v in spec.get("volumes") or []:
        kind = next((t for t in VOLUME_TYPES if isinstance(v, dict) and t in v), None)
        if kind and kind not in RESTRICTED_VOLUMES:
            vols.append(f'volume "{v.get("name", "")}" uses restricted volume type "{kind}"')
    if vols:
        out.append(f"restricted volume types ({'; '.join(vols)})")
    esc = [c.get("name", "") for c in containers if _sc(c).get("allowPrivilegeEscalation") is not False]
    if esc:
        out.append(f"allowPrivilegeEscalation != false ({_names('container', esc)} must set "
                   "securityContext.allowPrivilegeEscalation=false)")
    caps = [c.get("name", "") for c in containers
            if "ALL" not in ((_sc(c).get("capabilities") or {}).get("drop") or [])]
    if caps:
        out.append(f'unrestricted capabilities ({_names("container", caps)} must set '
                   'securityContext.capabilities.drop=["ALL"])')
    pod_sc = spec.get("securityContext") or {}
    root = [c.get("name", "") for c in containers
            if _sc(c).get("runAsNonRoot") is not True and not (pod_sc.get("runAsNonRoot") is True
                                                               and _sc(c).get("runAsNonRoot") is None)]
    if root:
        who = "pod or " + _names("container", root)
        out.append(f"runAsNonRoot != true ({who} must set securityContext.runAsNonRoot=true)")
    uid0 = [c.get("name", "") for c in containers if _sc(c).get("runAsUser") == 0]
    if pod_sc.get("runAsUser") == 0 or uid0:
        out.append("runAsUser=0 (" + ("pod" if pod_sc.get("runAsUser") == 0 else _names("container", uid0))
                   + " must not set runAsUser=0)")
    pod_profile = (pod_sc.get("seccompProfile") or {}).get("type")
    missing = [c.get("name", "") for c in containers
               if ((_sc(c).get("seccompProfile") or {}).get("type") or pod_profile) not in ("RuntimeDefault", "Localhost")]
    if missing:
        who = "pod or " + _names("container", missing)
        out.append(f'seccompProfile ({who} must set securityContext.seccompProfile.type to "RuntimeDefault" or '
                   '"Localhost")')
    return out


def admit_pod(store: Any, namespace: str | None, pod: dict) -> None:
    """Refuse the pod if its namespace enforces a level it breaks."""
    if not namespace:
        return
    from .resources import BY_PLURAL

    kv = store.get(BY_PLURAL["namespaces"].key(None, namespace))
    labels = ((decode(kv.value).get("metadata") or {}).get("labels") or {}) if kv else {}
    level = labels.get(LABEL)
    if level not in ("baseline", "restricted"):
        return
    version = labels.get(f"{LABEL}-version", "latest")
    spec = pod.get("spec") or {}
    broken = restricted(spec) if level == "restricted" else baseline(spec)
    if broken:
        name = (pod.get("metadata") or {}).get("name", "")
        raise StatusError(403, "Forbidden", f'pods "{name}" is forbidden: violates PodSecurity "{level}:{version}": '
                          + ", ".join(broken), {"name": name, "kind": "pods"})
