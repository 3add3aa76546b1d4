"""Which Service a request goes to: the Ingress rules' host and path matching, as the spec words it.

Hosts: a rule's exact host wins over a wildcard (``*.example.com`` matches one more label),
which wins over a rule with no host. Within the chosen host, the longest matching path wins;
at equal length ``Exact`` wins over ``Prefix``. ``Prefix`` matches element by element (``/foo``
matches ``/foo`` and ``/foo/bar``, not ``/foobar``); ``ImplementationSpecific`` is read as
``Prefix`` here. With no matching rule the ``defaultBackend`` of the oldest Ingress that has
one answers, and with none of those the gateway answers 404.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backend:
    """A Service port an Ingress points at: by number or by name."""

    namespace: str
    service: str
    port: int | str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.service}:{self.port}"


@dataclass(frozen=True)
class Path:
    path: str
    kind: str  # Exact, Prefix or ImplementationSpecific
    backend: Backend
    ingress: str  # namespace/name, for messages

    def matches(self, request_path: str) -> bool:
        if self.kind == "Exact":
            return request_path == self.path
        prefix = self.path.rstrip("/")
        if not prefix:
            return True
        return request_path == prefix or request_path.startswith(prefix + "/")

    def rank(self) -> tuple[int, int]:
        return len(self.path.rstrip("/") if self.kind != "Exact" else self.path), 1 if self.kind == "Exact" else 0


def backend_of(namespace: str, b: dict | None) -> Backend | None:
    svc = (b or {}).get("service") or {}
    port = svc.get("port") or {}
    value = port.get("number") or port.get("name")
    if not svc.get("name") or not value:
        return None  # a resource backend: nothing this gateway can send HTTP to
    return Backend(namespace, svc["name"], value)


def _host_of(header: str) -> str:
    host = (header or "").strip().lower()
    if host.startswith("["):  # [::1]:8080
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


class RouteTable:
    """The rules of every Ingress this gateway serves, ready to match requests."""

    def __init__(self, ingresses: list[dict]):
        self.hosts: dict[str, list[Path]] = {}
        self.default: Backend | None = None
        for ing in sorted(ingresses, key=lambda i: (i["metadata"].get("creationTimestamp", ""),
                                                    i["metadata"].get("namespace", ""), i["metadata"]["name"])):
            md, spec = ing["metadata"], ing.get("spec") or {}
            ns = md.get("namespace", "default")
            if self.default is None and spec.get("defaultBackend"):
                self.default = backend_of(ns, spec["defaultBackend"])
            for rule in spec.get("rules") or []:
                paths = self.hosts.setdefault((rule.get("host") or "").lower(), [])
                for p in ((rule.get("http") or {}).get("paths")) or []:
                    backend = backend_of(ns, p.get("backend"))
                    if backend is not None:
                        paths.append(Path(p.get("path") or "/", p.get("pathType", "Prefix"), backend,
                                          f"{ns}/{md['name']}"))
        for paths in self.hosts.values():
            paths.sort(key=Path.rank, reverse=True)  # stable: the older Ingress wins a tie

    def _host_rules(self, host: str) -> list[Path] | None:
        if host in self.hosts and host:
            return self.hosts[host]
        if "." in host:
            wildcard = "*." + host.split(".", 1)[1]
            if wildcard in self.hosts:
                return self.hosts[wildcard]
        return self.hosts.get("")

    def match(self, host_header: str, path: str) -> Backend | None:
        """The backend for a request's Host header and URL path, or None (404)."""
        for p in self._host_rules(_host_of(host_header)) or []:
            if p.matches(path):
                return p.backend
        return self.default
