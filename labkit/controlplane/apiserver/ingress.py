"""Ingresses and IngressClasses (networking.k8s.io/v1): defaults and validation.

The apiserver only stores them; an ingress controller (labkit's is in ``labkit/ingress/``) reads
the rules and routes. The checks here are the ones kube-apiserver makes on the fields users write
most: hosts, paths and their types, backends and the class name, with kube-apiserver's messages.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from .errors import cause
from .validation import DNS1123_LABEL, check_name

PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
_WILDCARD = re.compile(r"^\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_CONTROLLER = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/[^\s]+$")
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"


def default_ingress(obj: dict) -> None:
    """v1 has no field defaults beyond an empty spec (pathType is required, not defaulted)."""
    obj.setdefault("spec", {})


def default_ingressclass(obj: dict) -> None:
    obj.setdefault("spec", {})


def _host(host: Any, path: str) -> list[dict]:
    if not isinstance(host, str) or not host:
        return []
    try:
        ipaddress.ip_address(host)
        return [cause(path, f'Invalid value: "{host}": must be a DNS name, not an IP address')]
    except ValueError:
        pass
    if host.startswith("*"):
        if not _WILDCARD.match(host):
            return [cause(path, f'Invalid value: "{host}": a wildcard DNS-1123 subdomain must start with '
                                "'*.', followed by a valid DNS subdomain, which must consist of lower case "
                                "alphanumeric characters, '-' or '.' and end with an alphanumeric character "
                                "(e.g. '*.example.com', regex used for validation is "
                                "'\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")]
        return []
    why = check_name(host)
    return [cause(path, f'Invalid value: "{host}": {why}')] if why else []


def _backend(b: Any, path: str) -> list[dict]:
    if not isinstance(b, dict):
        return [cause(path, "Required value", "FieldValueRequired")]
    svc, res = b.get("service"), b.get("resource")
    if svc and res:
        return [cause(path, "Invalid value: \"\": cannot set both resource and service backends")]
    if res:
        return [] if isinstance(res, dict) and res.get("kind") and res.get("name") else [
            cause(f"{path}.resource", "Required value: kind and name are required", "FieldValueRequired")]
    if not isinstance(svc, dict):
        return [cause(path, "Invalid value: \"\": one backend must be specified")]
    out = []
    name = svc.get("name")
    if not name:
        out.append(cause(f"{path}.service.name", "Required value", "FieldValueRequired"))
    elif not isinstance(name, str) or len(name) > 63 or not DNS1123_LABEL.match(name) or name[0].isdigit():
        out.append(cause(f"{path}.service.name", f'Invalid value: "{name}": a DNS-1035 label must consist of '
                                                  "lower case alphanumeric characters or '-', start with an "
                                                  "alphabetic character, and end with an alphanumeric character"))
    port = svc.get("port")
    if not isinstance(port, dict) or not (port.get("name") or port.get("number")):
        out.append(cause(f"{path}.service.port", "Invalid value: \"\": port name or number is required"))
    elif port.get("name") and port.get("number"):
        out.append(cause(f"{path}.service.port", "Invalid value: \"\": cannot set both port name & port number"))
    elif port.get("number") is not None:
        n = port["number"]
        if isinstance(n, bool) or not isinstance(n, int) or not 0 < n < 65536:
            out.append(cause(f"{path}.service.port.number",
                             f"Invalid value: {n}: must be between 1 and 65535, inclusive"))
    return out


def _paths(http: Any, path: str) -> list[dict]:
    paths = http.get("paths") if isinstance(http, dict) else None
    if not paths:
        return [cause(f"{path}.paths", "Required value", "FieldValueRequired")]
    out = []
    for j, p in enumerate(paths):
        here = f"{path}.paths[{j}]"
        if not isinstance(p, dict):
            out.append(cause(here, "Invalid value: must be an object"))
            continue
        kind = p.get("pathType")
        if not kind:
            out.append(cause(f"{here}.pathType", "Required value: pathType must be specified", "FieldValueRequired"))
        elif kind not in PATH_TYPES:
            out.append(cause(f"{here}.pathType", f'Unsupported value: "{kind}": supported values: '
                                                 + ", ".join(f'"{t}"' for t in PATH_TYPES), "FieldValueNotSupported"))
        value = p.get("path", "")
        if kind in ("Exact", "Prefix") or value:
            if not isinstance(value, str) or not value.startswith("/"):
                out.append(cause(f"{here}.path", f'Invalid value: "{value}": must be an absolute path'))
            elif kind in ("Exact", "Prefix") and any(s in value for s in ("//", "/./", "/../", "%2f", "%2F")):
                out.append(cause(f"{here}.path", f'Invalid value: "{value}": must not contain \'//\', '
                                                 "'/./', '/../' or '%2f'"))
        out += _backend(p.get("backend"), f"{here}.backend")
    return out


def validate_ingress(obj: dict, old: dict | None) -> list[dict]:
    """Rules or a default backend; hosts, paths, path types and backends as kube-apiserver checks them."""
    spec = obj.get("spec") or {}
    out: list[dict] = []
    rules = spec.get("rules") or []
    if not rules and not spec.get("defaultBackend"):
        out.append(cause("spec", "Invalid value: \"\": either `defaultBackend` or `rules` must be specified"))
    if spec.get("defaultBackend") is not None:
        out += _backend(spec["defaultBackend"], "spec.defaultBackend")
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            out.append(cause(f"spec.rules[{i}]", "Invalid value: must be an object"))
            continue
        out += _host(rule.get("host"), f"spec.rules[{i}].host")
        if "http" in rule:
            out += _paths(rule["http"], f"spec.rules[{i}].http")
    cls = spec.get("ingressClassName")
    if cls is not None:
        why = check_name(cls) if isinstance(cls, str) else "must be a string"
        if why:
            out.append(cause("spec.ingressClassName", f'Invalid value: "{cls}": {why}'))
    for i, tls in enumerate(spec.get("tls") or []):
        for k, host in enumerate((tls or {}).get("hosts") or []):
            out += _host(host, f"spec.tls[{i}].hosts[{k}]")
    return out


def validate_ingressclass(obj: dict, old: dict | None) -> list[dict]:
    """A domain-prefixed controller name, which never changes once set."""
    ctl = (obj.get("spec") or {}).get("controller")
    if not ctl:
        return [cause("spec.controller", "Required value", "FieldValueRequired")]
    if not isinstance(ctl, str) or len(ctl) > 250 or not _CONTROLLER.match(ctl):
        return [cause("spec.controller", f'Invalid value: "{ctl}": must be a domain-prefixed path (such as '
                                         '"acme.io/foo"), at most 250 characters')]
    if old is not None and ((old.get("spec") or {}).get("controller")) != ctl:
        return [cause("spec.controller", f'Invalid value: "{ctl}": field is immutable')]
    return []
