"""Serving the kinds CustomResourceDefinitions define: "the master is the kernel".

When a CRD is written, each of its served versions becomes one more :class:`ResourceType` in the
resource table, so routes, discovery, OpenAPI, lists and watches serve it at once, with no code
of its own. Its instances are stored under ``/registry/<plural>.<group>/`` and checked against the
version's structural schema (:mod:`.crdschema`). Deleting the CRD stops serving the kind and
removes its instances.

Every apiserver learns CRDs from its watch cache too (:meth:`CustomResources.watch`), so servers
sharing one etcd agree, and a restarted server serves what its store holds. The resource table is
the process's own: two apiservers started in one Python process share their custom kinds.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from labkit.controlplane.store import KeyNotFound, Store

from . import crdschema, resources, tables
from .codec import decode
from .errors import invalid
from .printercolumns import printer
from .resources import ResourceType

log = logging.getLogger(__name__)

CRD_PREFIX = "/registry/customresourcedefinitions/"
# what a custom resource's PATCH accepts (no strategic merge: there are no Go structs to read keys from)
PATCH_TYPES = "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"


def _defaulter(schema: dict):
    def default(obj: dict) -> None:
        crdschema.apply_defaults(obj, schema)
    return default


def _validator(schema: dict):
    def check(obj: dict, old: dict | None) -> list:
        return crdschema.validate(obj, schema)
    return check


_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(name: str) -> tuple:
    """Kubernetes' version order, highest first: v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > anything else."""
    m = _KUBE_VERSION.match(name)
    if m is None:
        return (3, name)
    major, stage, minor = int(m[1]), m[2], int(m[3] or 0)
    return ({None: 0, "beta": 1, "alpha": 2}[stage], -major, -minor)


def resource_types(crd: dict) -> list[ResourceType]:
    """One resource per served version of the CRD, the preferred (highest) version first."""
    spec = crd.get("spec") or {}
    names, group = spec.get("names") or {}, spec.get("group", "")
    out = []
    for v in sorted(spec.get("versions") or [], key=lambda v: version_priority(v.get("name", ""))):
        if not v.get("served", True):
            continue
        schema = (v.get("schema") or {}).get("openAPIV3Schema") or {"type": "object"}
        subs = ("status",) if "status" in (v.get("subresources") or {}) else ()
        out.append(ResourceType(
            group, v["name"], names["plural"], names["kind"], namespaced=spec.get("scope") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()), subresources=subs,
            categories=tuple(names.get("categories") or ()), defaulter=_defaulter(schema),
            validator=_validator(schema), singular_name=names.get("singular", ""), openapi_schema=schema,
            storage=f"{names['plural']}.{group}", custom=True, top_fields=frozenset()))
    return out


def prune(rt: ResourceType, obj: dict) -> list[str]:
    """Drop what the schema does not declare (metadata is kept to ObjectMeta's own fields)."""
    meta = obj.get("metadata")
    dropped = []
    if isinstance(meta, dict):
        for k in [k for k in meta if k not in resources.META_FIELDS]:
            del meta[k]
            dropped.append(f"metadata.{k}")
    return dropped + crdschema.prune(obj, rt.openapi_schema)


def validate_status(rt: ResourceType, obj: dict) -> None:
    """A /status write is checked against the schema as well (only its status can have changed)."""
    causes = crdschema.validate(obj, rt.openapi_schema)
    if causes:
        raise invalid(rt.kind, rt.group, obj["metadata"].get("name", ""), causes)


class CustomResources:
    """Which CRDs this server serves, kept in step with the store."""

    def __init__(self, store: Store):
        self.store = store
        self.served: dict[str, tuple[int, list[tuple[str, str, str]]]] = {}  # CRD name -> (revision, paths)

    def load(self) -> None:
        """Serve every CRD the store already holds (a restarted apiserver)."""
        kvs, _ = self.store.list(CRD_PREFIX)
        for kv in kvs:
            self.observe(decode(kv.value), kv.mod_revision)

    def observe(self, crd: dict, revision: int) -> None:
        """Serve the CRD as written at ``revision`` (older news than what is served is ignored)."""
        name = crd["metadata"]["name"]
        if self.served.get(name, (0, []))[0] > revision:
            return
        try:
            rts = resource_types(crd)
        except (KeyError, TypeError, AttributeError) as exc:  # validation let nothing like this through
            log.warning("CRD %s not served: %s", name, exc)
            return
        self._withdraw(name)
        resources.serve(rts)
        columns = {v.get("name"): v.get("additionalPrinterColumns") or []
                   for v in (crd.get("spec") or {}).get("versions") or []}
        for rt in rts:
            tables.PRINTERS[tables.printer_key(rt)] = printer(columns.get(rt.version) or [])
        self.served[name] = (revision, [(rt.group, rt.version, rt.plural) for rt in rts])
        self._changed({rt.group for rt in rts})

    def forget(self, name: str, revision: int, remove_instances: bool) -> None:
        """Stop serving a deleted CRD; the server that deleted it also deletes its instances."""
        if self.served.get(name, (0, []))[0] > revision:
            return
        paths = self.served.get(name, (0, []))[1]
        segments = {f"{plural}.{group}" for group, _, plural in paths}
        self._withdraw(name)
        self.served[name] = (revision, [])
        if remove_instances:
            for segment in segments:
                self.remove_instances(segment)

    def close(self) -> None:
        """Withdraw every kind this server added (the resource table outlives one server in a process)."""
        for name in list(self.served):
            self._withdraw(name)
        self.served.clear()

    def remove_instances(self, segment: str) -> None:
        kvs, _ = self.store.list(f"/registry/{segment}/")
        for kv in kvs:
            try:
                self.store.delete(kv.key)
            except KeyNotFound:
                pass

    def _withdraw(self, name: str) -> None:
        _, paths = self.served.get(name, (0, []))
        for group, version, plural in paths:
            resources.withdraw_path(group, version, plural)
            tables.PRINTERS.pop(f"{version}/{plural}.{group}", None)
        self._changed({g for g, _, _ in paths})

    @staticmethod
    def _changed(groups: set[str]) -> None:
        from .discovery import forget_documents
        forget_documents(groups)

    def watch(self, events: list[Any]) -> None:
        """Hub listener: CRDs written through another apiserver sharing this store."""
        for ev in events:
            if not ev.key.startswith(CRD_PREFIX):
                continue
            if ev.type == "DELETED":
                self.forget(ev.key[len(CRD_PREFIX):], ev.revision, remove_instances=False)
            else:
                self.observe(decode(ev.value), ev.revision)
