"""Object storage rules: what create, update, patch and delete do to an object in the store.

This is kube-apiserver's "registry" layer: it fills in metadata (uid, creationTimestamp,
generation), runs defaulting and validation, turns store outcomes into API errors (a stale
resourceVersion becomes 409 Conflict, an existing name 409 AlreadyExists) and implements graceful
deletion. Everything here is synchronous; the HTTP layer decides which thread calls it.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from labkit.controlplane.store import Compacted, Conflict, KeyExists, KeyNotFound, Store, Unavailable

from . import errors, limitranger, podsecurity, priority, resourcequota
from .codec import decode, encode, now_rfc3339, with_rv
from .customresources import validate_status
from .defaultstorageclass import admit_claim
from .errors import StatusError
from .resources import BY_PLURAL, RESOURCES, ResourceType
from .serviceips import allocate_service_addresses
from .validation import check_labels, check_name, generate_name
from .workloads import generate_job_selector

PATCH_RETRY_SECONDS = 5.0  # how long a patch keeps re-reading a busy object before it gives up
OBJECT_MODIFIED = "the object has been modified; please apply your changes to the latest version and try again"
PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class _LostRace(Exception):
    """A compare-and-swap lost to a concurrent write; the caller retries on the fresh object."""


COMMON_TOP_ALL = {"apiVersion", "kind", "metadata"}


def _drop_unknown(rt: ResourceType, obj: dict) -> None:
    """Unknown fields are dropped, as decoding into Go structs drops them in Kubernetes."""
    if rt.custom:  # pruned by its schema instead (see customresources.prune)
        return
    for k in [k for k in obj if k not in COMMON_TOP_ALL and k not in rt.top_fields]:
        del obj[k]


def _ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class Registry:
    """Create/read/update/delete for every resource in the table, on one :class:`Store`."""

    def __init__(self, store: Store):
        self.store = store
        # namespaces known to exist, kept current from the watch cache (like the NamespaceLifecycle
        # admission plugin's informer); a miss falls back to reading the store
        self.known_namespaces: set[str] = set()
        self.priority_classes = priority.PriorityClasses(store)  # what Priority admission reads

    # ------------------------------------------------------------------ helpers
    def _store_call(self, fn, *args):
        try:
            return fn(*args)
        except Unavailable as exc:
            raise errors.unavailable(f"the storage backend is unavailable: {exc}") from exc

    def watch_namespaces(self, events: list) -> None:
        """Hub listener: keep :attr:`known_namespaces` in step with the store."""
        for ev in events:
            if ev.key.startswith("/registry/namespaces/"):
                name = ev.key.rsplit("/", 1)[1]
                if ev.type == "DELETED":
                    self.known_namespaces.discard(name)
                else:
                    self.known_namespaces.add(name)

    def ensure_namespaces(self) -> None:
        """Create the namespaces every cluster has (default, kube-system, ...) if the store lacks them."""
        ns_rt = BY_PLURAL["namespaces"]
        for name in SYSTEM_NAMESPACES:
            if self.store.get(ns_rt.key(None, name)) is None:
                try:
                    self.create(ns_rt, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
                except StatusError:
                    pass

    def get_kv(self, rt: ResourceType, ns: str | None, name: str):
        """The stored key-value of one object, or 404 NotFound."""
        kv = self._store_call(self.store.get, rt.key(ns, name))
        if kv is None:
            raise errors.not_found(rt.plural, rt.group, name)
        return kv

    def get(self, rt: ResourceType, ns: str | None, name: str) -> dict:
        """One object, decoded, with its resourceVersion."""
        kv = self.get_kv(rt, ns, name)
        return decode(kv.value, kv.mod_revision)

    def _check_body(self, rt: ResourceType, obj: Any, ns: str | None, name: str | None) -> dict:
        if not isinstance(obj, dict):
            raise errors.bad_request("the request body must be an object")
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if kind is None and api_version is None:
            obj["kind"], obj["apiVersion"] = rt.kind, rt.group_version
        elif kind != rt.kind or api_version != rt.group_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({rt.group_version})" if api_version != rt.group_version else
                f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if rt.namespaced:
            if meta.get("namespace") and ns and meta["namespace"] != ns:
                raise errors.bad_request("the namespace of the provided object does not match the namespace "
                                         "sent on the request")
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if name is not None and meta.get("name") and meta["name"] != name:
            raise errors.bad_request(f"the name of the object ({meta['name']}) does not match the name "
                                     f"on the URL ({name})")
        if name is not None:
            meta["name"] = name
        return obj

    def _validate(self, rt: ResourceType, obj: dict, old: dict | None) -> None:
        meta = obj["metadata"]
        name = meta.get("name") or ""
        causes = []
        why = check_name(name, label=rt.plural in ("namespaces", "services"))
        if rt.group == "rbac.authorization.k8s.io":  # RBAC names are path segments ("system:node", "edit")
            why = (f"may not be '{name}'" if name in (".", "..") else "may not contain '/' or '%'"
                   if "/" in name or "%" in name else "may not be empty" if not name else None)
        if why:
            causes.append(errors.cause("metadata.name", f'Invalid value: "{name}": {why}'))
        causes += check_labels(meta.get("labels"), "metadata.labels")
        anns = meta.get("annotations")
        if anns is not None and (not isinstance(anns, dict) or not all(isinstance(v, str) for v in anns.values())):
            causes.append(errors.cause("metadata.annotations", "must be a map of strings"))
        if rt.validator:
            causes += rt.validator(obj, old)
        if causes:
            raise errors.invalid(rt.kind, rt.group, name, causes)

    def _admit(self, rt: ResourceType, obj: dict, old: dict | None) -> None:
        """Mutating admission and the steps that read other objects, in kube-apiserver's order:
        LimitRanger's defaults (pods), Priority (pods, PriorityClasses), PodSecurity (pods, by
        namespace label), DefaultStorageClass (new claims). The validating steps that count
        quantities run after validation, in :meth:`_admit_validated`."""
        ns = (obj.get("metadata") or {}).get("namespace") if rt.namespaced else None
        if rt.plural == "pods" and not rt.custom:
            if old is None:
                limitranger.default_pod(self.store, ns, obj)
                priority.admit_pod(self.priority_classes, obj)
                podsecurity.admit_pod(self.store, ns, obj)
            else:
                priority.keep_resolved(obj, old)
        elif rt.plural == "priorityclasses" and not rt.custom:
            priority.admit_priorityclass(self.priority_classes, obj, old)
        elif rt.plural == "persistentvolumeclaims" and not rt.custom and old is None:
            admit_claim(self.store, obj)  # the DefaultStorageClass admission plugin

    def _admit_validated(self, rt: ResourceType, obj: dict, dry_run: bool = False) -> None:
        """Validating admission on a new object that passed validation: LimitRanger's ranges, then
        ResourceQuota, which charges it to its namespace's quotas (last, as in kube-apiserver)."""
        ns = (obj.get("metadata") or {}).get("namespace") if rt.namespaced else None
        if not ns:
            return
        if rt.plural == "pods" and not rt.custom:
            limitranger.check_pod(self.store, ns, obj)
        elif rt.plural == "persistentvolumeclaims" and not rt.custom:
            limitranger.check_claim(self.store, ns, obj)
        resourcequota.admit(self.store, rt.plural, rt.group, ns, obj, dry_run)

    # ------------------------------------------------------------------ create
    def create(self, rt: ResourceType, ns: str | None, obj: Any, dry_run: bool = False) -> tuple[dict, bytes]:
        """Fill in metadata and defaults, validate, and store a new object (409 if the name exists)."""
        obj, value = self.prepare_create(rt, ns, obj, dry_run)
        if dry_run:
            return obj, value
        try:
            kv = self._store_call(self.store.create, rt.key(ns, obj["metadata"]["name"]), value)
        except KeyExists:
            raise errors.already_exists(rt.plural, rt.group, obj["metadata"]["name"]) from None
        return self.created(obj, value, kv)

    @staticmethod
    def created(obj: dict, value: bytes, kv) -> tuple[dict, bytes]:
        """The reply for a create the store acknowledged: the object and its bytes, with its resourceVersion."""
        obj["metadata"]["resourceVersion"] = str(kv.mod_revision)
        return obj, with_rv(value, kv.mod_revision)

    def prepare_create(self, rt: ResourceType, ns: str | None, obj: Any, dry_run: bool = False) -> tuple[dict, bytes]:
        """Everything a create does before the store: the finished object and its stored bytes."""
        obj = self._check_body(rt, obj, ns, None)
        meta = obj["metadata"]
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = generate_name(meta["generateName"])
            else:
                raise errors.invalid(rt.kind, rt.group, "", [errors.cause(
                    "metadata.name", "Required value: name or generateName is required", "FieldValueRequired")])
        if rt.namespaced:
            if not ns:
                raise errors.bad_request("a namespace must be given for a namespaced resource")
            if rt.plural != "events" and ns not in self.known_namespaces and \
                    self.store.get(BY_PLURAL["namespaces"].key(None, ns)) is None:
                raise errors.not_found("namespaces", "", ns)
        _drop_unknown(rt, obj)
        if rt.custom and rt.has_status:
            obj.pop("status", None)  # written through /status only
        if rt.defaulter:
            rt.defaulter(obj)
        self._admit(rt, obj, None)
        self._validate(rt, obj, None)
        self._admit_validated(rt, obj, dry_run)
        if rt.plural == "services":
            allocate_service_addresses(self.store, obj)
        for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(k, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if rt.has_generation:
            meta["generation"] = 1
        if rt.plural == "jobs":  # the selector names the uid, known only now (as the Job strategy does it)
            generate_job_selector(obj)
        if rt.reset_status_on_create:
            obj["status"] = self._initial_status(rt, obj)
        return obj, encode(obj)

    @staticmethod
    def _initial_status(rt: ResourceType, obj: dict) -> dict:
        if rt.plural == "pods":
            return {"phase": "Pending", "qosClass": _qos_class(obj.get("spec") or {})}
        if rt.plural == "replicasets":
            return {"replicas": 0}  # not omitempty in Kubernetes; clients require it
        if rt.plural == "daemonsets":  # the same: these four counts are required in clients' models
            return {k: 0 for k in ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled",
                                   "numberReady")}
        if rt.plural == "statefulsets":
            return {"replicas": 0, "availableReplicas": 0}
        return {}

    # ------------------------------------------------------------------ update
    def update(self, rt: ResourceType, ns: str | None, name: str, obj: Any, subresource: str | None = None,
               dry_run: bool = False, old_kv=None) -> tuple[dict, bytes]:
        """Replace an object (or its status), compare-and-swap on resourceVersion (409 if stale)."""
        obj = self._check_body(rt, obj, ns, name)
        kv = old_kv or self.get_kv(rt, ns, name)
        old = decode(kv.value, kv.mod_revision)
        want_rv = obj["metadata"].get("resourceVersion")
        if want_rv not in (None, "") and str(want_rv) != str(kv.mod_revision):
            raise errors.conflict(rt.plural, rt.group, name, OBJECT_MODIFIED)
        if subresource == "status":
            new = decode(kv.value, kv.mod_revision)
            new["status"] = obj.get("status", {})
            obj = new
            if rt.custom:
                validate_status(rt, obj)
        else:
            _drop_unknown(rt, obj)
            if rt.has_status:
                if "status" in old:
                    obj["status"] = old["status"]
                else:
                    obj.pop("status", None)
            if rt.plural == "services":  # allocated addresses stay with the service
                spec, old_spec = obj.setdefault("spec", {}), old.get("spec") or {}
                for k in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                    if k in old_spec and not spec.get(k):
                        spec[k] = old_spec[k]
            if rt.defaulter:
                rt.defaulter(obj)
            self._admit(rt, obj, old)
            self._validate(rt, obj, old)
        return self._write(rt, ns, name, obj, old, kv, dry_run)

    def _write(self, rt: ResourceType, ns: str | None, name: str, obj: dict, old: dict, kv,
               dry_run: bool) -> tuple[dict, bytes]:
        meta, old_meta = obj["metadata"], old["metadata"]
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            if k in old_meta:
                meta[k] = old_meta[k]
            else:
                meta.pop(k, None)
        meta.pop("selfLink", None)
        if rt.has_generation and _generation_changes(rt, obj, old):
            meta["generation"] = old_meta.get("generation", 0) + 1
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if obj == old:  # a no-op update writes nothing and keeps the resourceVersion
            return obj, with_rv(kv.value, kv.mod_revision)
        if dry_run:
            return obj, encode(obj)
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and \
                not meta.get("deletionGracePeriodSeconds"):
            return self._remove(rt, ns, name, kv, obj)
        value = encode(obj)
        try:
            new_kv = self._store_call(self.store.update, rt.key(ns, name), value, kv.mod_revision)
        except Conflict:
            raise errors.conflict(rt.plural, rt.group, name, OBJECT_MODIFIED) from None
        except KeyNotFound:
            raise errors.not_found(rt.plural, rt.group, name) from None
        meta["resourceVersion"] = str(new_kv.mod_revision)
        return obj, with_rv(value, new_kv.mod_revision)

    def patch(self, rt: ResourceType, ns: str | None, name: str, patcher, subresource: str | None = None,
              dry_run: bool = False) -> tuple[dict, bytes]:
        """Apply ``patcher(current_obj) -> new_obj``, retrying when someone else wrote in between.

        Like kube-apiserver's GuaranteedUpdate, a patch without a resourceVersion is retried on the
        fresh object until it lands: a controller busy writing the object's status must not turn a
        user's ``kubectl scale`` or ``patch`` into a 409. Only a patch that names a resourceVersion
        (or one still losing after PATCH_RETRY_SECONDS) gets the Conflict.
        """
        deadline = time.monotonic() + PATCH_RETRY_SECONDS
        while True:
            kv = self.get_kv(rt, ns, name)
            current = decode(kv.value, kv.mod_revision)
            new = patcher(decode(kv.value, kv.mod_revision))
            if not isinstance(new, dict):
                raise errors.bad_request("the patch did not produce an object")
            meta = new.setdefault("metadata", {}) if isinstance(new.get("metadata"), dict | None) else None
            if meta is None:
                raise errors.bad_request("metadata must be an object")
            rv_in_patch = meta.get("resourceVersion")
            if rv_in_patch != current["metadata"]["resourceVersion"] and rv_in_patch not in (None, ""):
                raise errors.conflict(rt.plural, rt.group, name, OBJECT_MODIFIED)
            meta["resourceVersion"] = current["metadata"]["resourceVersion"]
            try:
                return self.update(rt, ns, name, new, subresource, dry_run, old_kv=kv)
            except StatusError as exc:
                # lost the race: patch the fresh object again. A patch that names a resourceVersion
                # inherits nothing from ``current``, so the fresh read above turns it into the 409
                if exc.reason != "Conflict" or time.monotonic() > deadline:
                    raise

    def write_raw(self, rt: ResourceType, ns: str | None, name: str, obj: dict, kv) -> tuple[dict, bytes]:
        """Compare-and-swap ``obj`` over ``kv`` with no defaulting or validation (binding uses it)."""
        value = encode(obj)
        try:
            new_kv = self._store_call(self.store.update, rt.key(ns, name), value, kv.mod_revision)
        except Conflict:
            raise errors.conflict(rt.plural, rt.group, name, OBJECT_MODIFIED) from None
        except KeyNotFound:
            raise errors.not_found(rt.plural, rt.group, name) from None
        obj["metadata"]["resourceVersion"] = str(new_kv.mod_revision)
        return obj, with_rv(value, new_kv.mod_revision)

    # ------------------------------------------------------------------ delete
    def delete(self, rt: ResourceType, ns: str | None, name: str, options: dict | None = None,
               dry_run: bool = False) -> tuple[dict, bytes, bool]:
        """Returns (object, bytes, gone): ``gone`` is False while a graceful delete is pending.

        Retried on the fresh object when a concurrent write (a kubelet posting status) wins the
        compare-and-swap, as kube-apiserver does: only failed preconditions give the caller a 409."""
        deadline = time.monotonic() + PATCH_RETRY_SECONDS
        while True:
            try:
                return self._delete_once(rt, ns, name, options or {}, dry_run)
            except _LostRace:
                if time.monotonic() > deadline:
                    raise errors.conflict(rt.plural, rt.group, name, OBJECT_MODIFIED) from None

    def _delete_once(self, rt: ResourceType, ns: str | None, name: str, options: dict,
                     dry_run: bool) -> tuple[dict, bytes, bool]:
        kv = self.get_kv(rt, ns, name)
        obj = decode(kv.value, kv.mod_revision)
        meta = obj["metadata"]
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            raise errors.conflict(rt.plural, rt.group, name,
                                  f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: "
                                  f"{meta.get('uid')}")
        if pre.get("resourceVersion") and str(pre["resourceVersion"]) != meta["resourceVersion"]:
            raise errors.conflict(rt.plural, rt.group, name,
                                  f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                                  f"ResourceVersion in object meta: {meta['resourceVersion']}")
        if rt.plural == "namespaces" and name in PROTECTED_NAMESPACES:
            raise StatusError(403, "Forbidden", f'namespaces "{name}" is forbidden: this namespace may not be '
                              "deleted", {"name": name, "kind": "namespaces"})
        if dry_run:
            return obj, with_rv(kv.value, kv.mod_revision), True
        if rt.plural == "priorityclasses":
            self.priority_classes.changed()
        policy = options.get("propagationPolicy")
        if policy is None and options.get("orphanDependents") is True:
            policy = "Orphan"
        finalizers = list(meta.get("finalizers") or [])
        if policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        elif policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        grace = self._grace_period(rt, obj, options)
        if rt.plural == "namespaces":
            self._empty_namespace(name)
            finalizers = [f for f in finalizers if f not in ("foregroundDeletion", "orphan")]
        if not finalizers and not grace:
            try:
                gone = self._store_call(self.store.delete, rt.key(ns, name), kv.mod_revision)
            except (Conflict, KeyNotFound):
                raise _LostRace from None  # changed or removed meanwhile: look again
            return obj, with_rv(gone.value, gone.mod_revision), True
        # graceful: record the intent; the kubelet (pods) or a controller (finalizers) finishes it
        if meta.get("deletionTimestamp"):
            old_grace = meta.get("deletionGracePeriodSeconds") or 0
            if grace is not None and grace < old_grace:
                meta["deletionGracePeriodSeconds"] = grace
                meta["deletionTimestamp"] = _ts(datetime.now(UTC) + timedelta(seconds=grace))
        else:
            meta["deletionTimestamp"] = _ts(datetime.now(UTC) + timedelta(seconds=grace or 0))
            meta["deletionGracePeriodSeconds"] = grace or 0
        if finalizers:
            meta["finalizers"] = finalizers
        value = encode(obj)
        try:
            new_kv = self._store_call(self.store.update, rt.key(ns, name), value, kv.mod_revision)
        except (Conflict, KeyNotFound):
            raise _LostRace from None
        meta["resourceVersion"] = str(new_kv.mod_revision)
        return obj, with_rv(value, new_kv.mod_revision), False

    @staticmethod
    def _grace_period(rt: ResourceType, obj: dict, options: dict) -> int | None:
        if rt.plural != "pods":
            return None
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        grace = options.get("gracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return 0  # nothing runs it: no kubelet will confirm, so delete now
        return max(int(grace), 0)

    def _remove(self, rt: ResourceType, ns: str | None, name: str, kv, obj: dict) -> tuple[dict, bytes]:
        try:
            gone = self._store_call(self.store.delete, rt.key(ns, name), kv.mod_revision)
        except Conflict:
            raise errors.conflict(rt.plural, rt.group, name, OBJECT_MODIFIED) from None
        except KeyNotFound:
            raise errors.not_found(rt.plural, rt.group, name) from None
        return obj, with_rv(gone.value, gone.mod_revision)

    def _empty_namespace(self, ns: str) -> None:
        for rt in RESOURCES:
            if not rt.namespaced:
                continue
            kvs, _ = self.store.list(rt.key_prefix(ns))
            for kv in kvs:
                try:
                    self.store.delete(kv.key)
                except KeyNotFound:
                    pass

    # ------------------------------------------------------------------ list
    def list_page(self, rt: ResourceType, ns: str | None, revision: int | None, limit: int | None,
                  start_after: str | None):
        """One page of keys under the resource's prefix, read at one revision (410 if compacted)."""
        try:
            return self._store_call(self.store.list, rt.key_prefix(ns), revision, limit, start_after)
        except Compacted:
            raise errors.expired("The provided continue parameter is too old to display a consistent list "
                                 "result. You can start a new list without the continue parameter.") from None


def _generation_changes(rt: ResourceType, obj: dict, old: dict) -> bool:
    """A custom resource's generation follows everything but metadata (and status, when it is a subresource)."""
    if not rt.custom:
        return obj.get("spec") != old.get("spec")
    skip = {"metadata", "status"} if rt.has_status else {"metadata"}
    return {k: v for k, v in obj.items() if k not in skip} != {k: v for k, v in old.items() if k not in skip}


def _qos_class(spec: dict) -> str:
    requests = limits = 0
    guaranteed = True
    for c in spec.get("containers") or []:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        requests += len(req)
        limits += len(lim)
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and req[r] != lim[r]):
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"
