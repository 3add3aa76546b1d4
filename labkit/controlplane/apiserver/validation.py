"""Validation and defaulting: what kube-apiserver checks and fills in before an object is stored.

Only the rules readers meet are here: DNS-1123 names, the required fields of pods and workloads,
a selector that matches its template, and the defaults clients rely on (restartPolicy, dnsPolicy,
imagePullPolicy, rolling-update strategy, service type ...).
"""

from __future__ import annotations

import base64
import ipaddress
import random
import re
from typing import Any

from . import quantities
from .errors import cause

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def generate_name(prefix: str) -> str:
    """``metadata.generateName`` + 5 random characters, like the real apiserver."""
    return prefix[:58] + "".join(random.choice(_NAME_CHARS) for _ in range(5))


def check_name(name: str, label: bool = False) -> str | None:
    """Return why ``name`` is not a valid DNS-1123 subdomain (or label), or None."""
    if label:
        if len(name) > 63 or not DNS1123_LABEL.match(name):
            return ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
                    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
        return None
    if len(name) > 253 or not DNS1123_SUBDOMAIN.match(name):
        return ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
    return None


def check_labels(labels: Any, path: str) -> list[dict]:
    """Causes for label keys and values that are not valid qualified names."""
    out = []
    if labels is None:
        return out
    if not isinstance(labels, dict):
        return [cause(path, "must be a map of strings")]
    for k, v in labels.items():
        key = k.rsplit("/", 1)[-1]
        if not key or len(key) > 63 or not _QUALIFIED.match(key):
            out.append(cause(f"{path}", f'Invalid value: "{k}": name part must consist of alphanumeric '
                             "characters, '-', '_' or '.', and must start and end with an alphanumeric character"))
        if not isinstance(v, str) or len(v) > 63 or (v and not _QUALIFIED.match(v)):
            out.append(cause(f"{path}", f'Invalid value: "{v}": a valid label must be an empty string or '
                             "consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                             "with an alphanumeric character"))
    return out


# ---------------------------------------------------------------- defaulting

def default_pod_spec(spec: dict) -> None:
    """Pod spec defaults (also applied to workload templates)."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            if not isinstance(c, dict):
                continue
            image = c.get("image") or ""
            tagless = ":" not in image.rsplit("/", 1)[-1] and "@" not in image
            c.setdefault("imagePullPolicy", "Always" if tagless or image.endswith(":latest") else "IfNotPresent")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("resources", {})
            for p in c.get("ports") or []:
                if isinstance(p, dict):
                    p.setdefault("protocol", "TCP")


def default_pod(obj: dict) -> None:
    """Pod defaults: restartPolicy, dnsPolicy, grace period, pull policy ..., and a container that
    gives a limit but no request requests its limit (as core/v1's pod defaults do)."""
    spec = obj.setdefault("spec", {})
    default_pod_spec(spec)
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            res = c.get("resources") if isinstance(c, dict) else None
            if isinstance(res, dict) and isinstance(res.get("limits"), dict) and res["limits"]:
                requests = res.setdefault("requests", {})
                if isinstance(requests, dict):
                    for name, q in res["limits"].items():
                        requests.setdefault(name, q)


def _default_template(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    tmpl = spec.get("template")
    if isinstance(tmpl, dict):
        tmpl.setdefault("metadata", {})
        if isinstance(tmpl.get("spec"), dict):
            default_pod_spec(tmpl["spec"])


def default_deployment(obj: dict) -> None:
    """Deployment defaults: 1 replica, RollingUpdate 25%/25%, history 10, deadline 600 s."""
    _default_template(obj)
    spec = obj["spec"]
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = strategy.setdefault("rollingUpdate", {})
        ru.setdefault("maxUnavailable", "25%")
        ru.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)


def default_replicaset(obj: dict) -> None:
    """ReplicaSet defaults: 1 replica and a defaulted pod template."""
    _default_template(obj)
    obj["spec"].setdefault("replicas", 1)


def default_service(obj: dict) -> None:
    """Service defaults: ClusterIP type, TCP ports, targetPort = port."""
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    for p in spec.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")
            if "port" in p:
                p.setdefault("targetPort", p["port"])
    if spec.get("clusterIP") and spec["clusterIP"] != "None":  # the registry allocates one when absent
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
    if spec["type"] != "ExternalName":
        spec.setdefault("internalTrafficPolicy", "Cluster")


def default_secret(obj: dict) -> None:
    """Secret defaults: type Opaque; stringData folded into base64 data."""
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        data = obj.setdefault("data", {})
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()


def default_namespace(obj: dict) -> None:
    """Namespace defaults: the kubernetes finalizer and phase Active."""
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {}).setdefault("phase", "Active")


def default_pvc(obj: dict) -> None:
    """PersistentVolumeClaim defaults: Filesystem mode, phase Pending."""
    obj.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
    obj.setdefault("status", {}).setdefault("phase", "Pending")


def default_pv(obj: dict) -> None:
    """PersistentVolume defaults: Retain policy, Filesystem mode, phase Pending."""
    spec = obj.setdefault("spec", {})
    spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
    spec.setdefault("volumeMode", "Filesystem")
    obj.setdefault("status", {}).setdefault("phase", "Pending")


def default_storageclass(obj: dict) -> None:
    """StorageClass defaults: Delete policy, Immediate binding."""
    obj.setdefault("reclaimPolicy", "Delete")
    obj.setdefault("volumeBindingMode", "Immediate")


# ---------------------------------------------------------------- validation

def _containers(spec: Any, path: str) -> list[dict]:
    out: list[dict] = []
    if not isinstance(spec, dict):
        return [cause(path, "Required value", "FieldValueRequired")]
    containers = spec.get("containers")
    if not containers or not isinstance(containers, list):
        return [cause(f"{path}.containers", "Required value", "FieldValueRequired")]
    seen = set()
    for i, c in enumerate(containers):
        p = f"{path}.containers[{i}]"
        if not isinstance(c, dict):
            out.append(cause(p, "must be an object"))
            continue
        name = c.get("name")
        if not name:
            out.append(cause(f"{p}.name", "Required value", "FieldValueRequired"))
        elif not isinstance(name, str) or check_name(name, label=True):
            out.append(cause(f"{p}.name", f'Invalid value: "{name}": {check_name(str(name), label=True)}'))
        elif name in seen:
            out.append(cause(f"{p}.name", f'Duplicate value: "{name}"', "FieldValueDuplicate"))
        seen.add(name)
        if not c.get("image"):
            out.append(cause(f"{p}.image", "Required value", "FieldValueRequired"))
        out += quantities.check(c.get("resources"), f"{p}.resources")
        out += _requests_within_limits(c.get("resources"), f"{p}.resources")
        for j, port in enumerate(c.get("ports") or []):
            n = port.get("containerPort") if isinstance(port, dict) else None
            if not isinstance(n, int) or not 0 < n < 65536:
                out.append(cause(f"{p}.ports[{j}].containerPort",
                                 f"Invalid value: {n}: must be between 1 and 65535, inclusive"))
    policy = spec.get("restartPolicy")
    if policy not in (None, "Always", "OnFailure", "Never"):
        out.append(cause(f"{path}.restartPolicy", f'Unsupported value: "{policy}": supported values: '
                         '"Always", "OnFailure", "Never"', "FieldValueNotSupported"))
    return out


def _requests_within_limits(res: Any, path: str) -> list[dict]:
    """A request above its limit is invalid (Kubernetes: "must be less than or equal to ... limit")."""
    if not isinstance(res, dict):
        return []
    requests, limits = res.get("requests") or {}, res.get("limits") or {}
    if not isinstance(requests, dict) or not isinstance(limits, dict):
        return []
    out = []
    for name, req in requests.items():
        if name in limits:
            try:
                wanted, most = quantities.value(req), quantities.value(limits[name])
                if wanted is not None and most is not None and wanted > most:
                    out.append(cause(f"{path}.requests", f'Invalid value: "{req}": must be less than or equal '
                                     f"to {name} limit of {limits[name]}"))
            except ValueError:
                pass  # malformed quantities are reported by the type check
    return out


def _immutable_data(obj: dict, old: dict | None) -> list[dict]:
    """ConfigMaps and Secrets marked ``immutable: true`` keep their data forever."""
    if old is None or not old.get("immutable"):
        return []
    out = []
    for field in ("data", "binaryData"):
        if (obj.get(field) or {}) != (old.get(field) or {}):
            out.append(cause(field, "Forbidden: field is immutable when `immutable` is set", "FieldValueForbidden"))
    if not obj.get("immutable"):
        out.append(cause("immutable", "Forbidden: field is immutable when `immutable` is set", "FieldValueForbidden"))
    return out


def validate_pod(obj: dict, old: dict | None) -> list[dict]:
    """Containers with names and images; a pod's spec is immutable once created, except images."""
    out = _containers(obj.get("spec"), "spec")
    if old is not None and isinstance(obj.get("spec"), dict) and isinstance(old.get("spec"), dict):
        # a pod's spec is immutable except images (and a few fields we do not model)
        strip = lambda s: {k: v for k, v in s.items() if k not in ("containers", "initContainers",  # noqa: E731
                                                                    "activeDeadlineSeconds", "tolerations")}
        if strip(obj["spec"]) != strip(old["spec"]) and old["spec"].get("nodeName") == obj["spec"].get("nodeName"):
            out.append(cause("spec", "Forbidden: pod updates may not change fields other than "
                             "`spec.containers[*].image`, `spec.initContainers[*].image`, "
                             "`spec.activeDeadlineSeconds` or `spec.tolerations`", "FieldValueForbidden"))
        if old["spec"].get("nodeName") and obj["spec"].get("nodeName") != old["spec"].get("nodeName"):
            out.append(cause("spec.nodeName", "Forbidden: pod is already bound", "FieldValueForbidden"))
    return out


def _validate_workload(obj: dict, old: dict | None) -> list[dict]:
    from .selectors import LabelSelector

    out: list[dict] = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [cause("spec", "Required value", "FieldValueRequired")]
    replicas = spec.get("replicas")
    if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
        out.append(cause("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0"))
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        out.append(cause("spec.selector", "Required value", "FieldValueRequired"))
    tmpl = spec.get("template")
    if not isinstance(tmpl, dict):
        out.append(cause("spec.template", "Required value", "FieldValueRequired"))
        return out
    labels = (tmpl.get("metadata") or {}).get("labels") or {}
    out += check_labels(labels, "spec.template.metadata.labels")
    if isinstance(selector, dict) and (selector.get("matchLabels") or selector.get("matchExpressions")):
        try:
            if not LabelSelector.from_match(selector).matches(labels):
                out.append(cause("spec.template.metadata.labels",
                                 f"Invalid value: {_fmt_map(labels)}: `selector` does not match template `labels`"))
        except Exception as exc:  # a malformed selector is the client's error
            out.append(cause("spec.selector", f"Invalid value: {exc}"))
        if old is not None and ((old.get("spec") or {}).get("selector") != selector):
            out.append(cause("spec.selector", f"Invalid value: {_fmt_selector(selector)}: "
                             "field is immutable", "FieldValueInvalid"))
    out += _containers(tmpl.get("spec"), "spec.template.spec")
    return out


def _fmt_map(m: dict) -> str:
    return "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in sorted(m.items())) + "}"


def _fmt_selector(sel: dict) -> str:
    return "v1.LabelSelector{MatchLabels:" + _fmt_map(sel.get("matchLabels") or {}) + "}"


validate_deployment = _validate_workload
validate_replicaset = _validate_workload


def validate_service(obj: dict, old: dict | None) -> list[dict]:
    """A known service type and ports in range."""
    out: list[dict] = []
    spec = obj.get("spec") or {}
    if spec.get("type") not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        out.append(cause("spec.type", f'Unsupported value: "{spec.get("type")}"', "FieldValueNotSupported"))
    for i, p in enumerate(spec.get("ports") or []):
        n = p.get("port") if isinstance(p, dict) else None
        if not isinstance(n, int) or not 0 < n < 65536:
            out.append(cause(f"spec.ports[{i}].port", f"Invalid value: {n}: must be between 1 and 65535, inclusive"))
        node_port = p.get("nodePort") if isinstance(p, dict) else None
        if isinstance(node_port, int) and not 0 <= node_port < 65536:
            out.append(cause(f"spec.ports[{i}].nodePort", f"Invalid value: {node_port}: provided port is not in the "
                             "valid range. The range of valid ports is 30000-32767"))
    ip = spec.get("clusterIP")
    if isinstance(ip, str) and ip not in ("", "None"):
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            out.append(cause("spec.clusterIPs[0]", f'Invalid value: "{ip}": must be a valid IP address, '
                             '(e.g. 10.9.8.7 or 2001:db8::ffff)'))
    return out


def validate_pvc(obj: dict, old: dict | None) -> list[dict]:
    """Requested storage is a quantity Kubernetes can hold, and not negative."""
    return quantities.check((obj.get("spec") or {}).get("resources"), "spec.resources")


def validate_pv(obj: dict, old: dict | None) -> list[dict]:
    """The capacity is a quantity Kubernetes can hold, and not negative."""
    return quantities.check({"capacity": (obj.get("spec") or {}).get("capacity")}, "spec", parts=("capacity",))


def validate_configmap(obj: dict, old: dict | None) -> list[dict]:
    """Valid data keys, no key in both data and binaryData."""
    out: list[dict] = []
    for field in ("data", "binaryData"):
        data = obj.get(field)
        if data is not None and not isinstance(data, dict):
            out.append(cause(field, "must be a map"))
        for k in (data or {}) if isinstance(data, dict) else ():
            if not re.match(r"^[-._a-zA-Z0-9]+$", k) or len(k) > 253:
                out.append(cause(f"{field}[{k}]", f'Invalid value: "{k}": a valid config key must consist of '
                                 "alphanumeric characters, '-', '_' or '.'"))
    if isinstance(obj.get("data"), dict) and isinstance(obj.get("binaryData"), dict):
        for k in set(obj["data"]) & set(obj["binaryData"]):
            out.append(cause(f"data[{k}]", f'Invalid value: "{k}": duplicate of key present in binaryData'))
    return out + _immutable_data(obj, old)


def validate_secret(obj: dict, old: dict | None) -> list[dict]:
    """Valid keys and base64 values."""
    out = validate_configmap({"data": obj.get("data")}, None) + _immutable_data(obj, old)
    for k, v in (obj.get("data") or {}).items():
        try:
            base64.b64decode(v, validate=True)
        except Exception:
            out.append(cause(f"data[{k}]", "Invalid value: must be base64-encoded"))
    return out
