"""The verbs on one object or collection: get, create, update, patch (and server-side apply), delete.

Each verb reads the request's body and query, calls the registry through :class:`.StoreCalls`, and
answers with the object as stored (or as a Table when the client asks for one). List and watch
have modules of their own (:mod:`.lists`, :mod:`.watchstream`).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import apply as ssa
from . import errors, tables
from .codec import decode, dumps, with_rv
from .errors import StatusError
from .patch import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, apply_patch
from .request import JSON, TABLE_CT, Request, field_checks, read_body, response
from .resources import ResourceType
from .selectable import AttrCache, matches
from .storecalls import StoreCalls

if TYPE_CHECKING:
    from .customresources import CustomResources

# DELETE answers with the object for these (as Kubernetes does); with a Status for the others
RETURNS_DELETED_OBJECT = {"pods", "namespaces", "services", "serviceaccounts", "persistentvolumes",
                          "persistentvolumeclaims", "storageclasses"}


def _success(rt: ResourceType, name: str, uid: str | None = None) -> dict:
    details: dict[str, Any] = {"name": name, "group": rt.group, "kind": rt.plural}
    if uid:
        details["uid"] = uid
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


class Verbs:
    """get, create, update, patch and delete, for objects and their status."""

    def __init__(self, calls: StoreCalls, attrs: AttrCache, crds: CustomResources | None = None):
        self.calls = calls
        self.registry = calls.registry
        self.attrs = attrs
        self.crds = crds

    async def _crd_written(self, req: Request, obj: dict, gone: bool = False) -> None:
        """A CRD's kind is served (or withdrawn, with its instances) before the reply leaves."""
        if self.crds is None or req.rt.plural != "customresourcedefinitions" or req.dry_run:
            return
        if gone:
            rev = self.registry.store.revision
            self.crds.forget(obj["metadata"]["name"], rev, remove_instances=False)
            segment = f"{obj['spec']['names']['plural']}.{obj['spec']['group']}"
            await self.calls.call(self.crds.remove_instances, segment)
        else:
            self.crds.observe(obj, int(obj["metadata"].get("resourceVersion") or 0))

    def object_reply(self, req: Request, obj: dict, data: bytes, status: int = 200,
                     headers: dict | None = None) -> web.Response:
        if req.wants_table():
            meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            return response(dumps(tables.table(tables.printer_key(req.rt), [obj], meta, req.query.get("includeObject",
                                                                                         "Metadata"))),
                            status, TABLE_CT, headers)
        return response(data, status, JSON, headers)

    async def get(self, req: Request) -> web.Response:
        kv = await self.calls.call(self.registry.get_kv, req.rt, req.ns, req.name)
        data = with_rv(kv.value, kv.mod_revision)
        if req.wants_table():
            return self.object_reply(req, decode(kv.value, kv.mod_revision), data)
        return response(data)

    async def create(self, req: Request) -> web.Response:
        body, _ = await read_body(req)
        headers = field_checks(req, body)
        obj, data = await self.calls.create(req.rt, req.ns, body, req.dry_run)
        await self._crd_written(req, obj)
        return self.object_reply(req, obj, data, 201, headers)

    async def update(self, req: Request) -> web.Response:
        body, _ = await read_body(req)
        headers = field_checks(req, body)
        obj, data = await self.calls.call_write(self.registry.update, req.rt, req.ns, req.name, body, req.sub,
                                                req.dry_run)
        await self._crd_written(req, obj)
        return self.object_reply(req, obj, data, 200, headers)

    async def patch(self, req: Request) -> web.Response:
        body, ct = await read_body(req, allow_patch=True)
        if ct == APPLY_PATCH:
            return await self.server_side_apply(req, body)
        if ct not in (MERGE_PATCH, STRATEGIC_PATCH, JSON_PATCH):
            raise errors.unsupported_media_type(ct)
        if ct == STRATEGIC_PATCH and req.rt.custom:  # no Go structs, so no merge keys: as Kubernetes answers
            raise errors.unsupported_patch(ct)
        if ct != JSON_PATCH and not isinstance(body, dict):
            raise errors.bad_request("a merge patch must be a JSON object")
        headers: dict = {}

        def patcher(current: dict) -> dict:
            new = apply_patch(ct, current, body)
            headers.update(field_checks(req, new))
            return new
        obj, data = await self.calls.call_write(self.registry.patch, req.rt, req.ns, req.name, patcher, req.sub,
                                                req.dry_run)
        await self._crd_written(req, obj)
        return self.object_reply(req, obj, data, 200, headers)

    async def server_side_apply(self, req: Request, body: Any) -> web.Response:
        """``kubectl apply --server-side``: create the object or apply the configuration to it, and
        remember the applied fields in managedFields (see :mod:`.apply`; no conflict detection).
        """
        manager = req.query.get("fieldManager")
        if not manager:
            raise errors.bad_request("PATCH requests for apply must set a fieldManager")
        if not isinstance(body, dict):
            raise errors.bad_request("an apply configuration must be an object")
        headers = field_checks(req, body)
        if req.sub is None:
            meta = {**(body.get("metadata") or {}), "name": req.name}
            meta["managedFields"] = [ssa.entry(manager, req.rt.group_version, ssa.field_set(body, top=True))]
            try:
                fresh = copy.deepcopy({**body, "metadata": meta})  # creating defaults it in place
                obj, data = await self.calls.call(self.registry.create, req.rt, req.ns, fresh, req.dry_run)
                await self._crd_written(req, obj)
                return self.object_reply(req, obj, data, 201, headers)
            except StatusError as err:
                if err.reason != "AlreadyExists":
                    raise

        def patcher(current: dict) -> dict:
            rv = current["metadata"]["resourceVersion"]
            if req.sub is None:
                new = ssa.apply(current, body, manager, req.rt.group_version)
            else:
                new = apply_patch(MERGE_PATCH if req.rt.custom else STRATEGIC_PATCH, current, body)
            new.setdefault("metadata", {})["resourceVersion"] = rv
            field_checks(req, new)
            return new
        obj, data = await self.calls.call(self.registry.patch, req.rt, req.ns, req.name, patcher, req.sub, req.dry_run)
        await self._crd_written(req, obj)
        return self.object_reply(req, obj, data, 200, headers)

    async def delete_options(self, req: Request) -> dict:
        options: dict = {}
        if req.http.can_read_body:
            body, _ = await read_body(req)
            if isinstance(body, dict):
                options = body
            elif body is not None:
                raise errors.bad_request("DeleteOptions must be an object")
        grace = req.int_param("gracePeriodSeconds")
        if grace is not None:
            options["gracePeriodSeconds"] = grace
        g = options.get("gracePeriodSeconds")
        if g is not None and (isinstance(g, bool) or not isinstance(g, int) or not -(2**63) <= g < 2**63):
            raise errors.bad_request("DeleteOptions.gracePeriodSeconds must be an integer (an int64)")
        if not isinstance(options.get("preconditions") or {}, dict):
            raise errors.bad_request("DeleteOptions.preconditions must be an object")
        if req.query.get("propagationPolicy"):
            options["propagationPolicy"] = req.query["propagationPolicy"]
        if options.get("propagationPolicy") not in (None, "Background", "Foreground", "Orphan"):
            raise errors.bad_request(f"invalid propagationPolicy {options['propagationPolicy']!r}: use "
                                     "Background, Foreground or Orphan")
        return options

    async def delete(self, req: Request) -> web.Response:
        options = await self.delete_options(req)
        # deleting a namespace deletes everything in it: never on the loop
        call = self.calls.call if req.rt.plural == "namespaces" else self.calls.call_write
        obj, data, gone = await call(self.registry.delete, req.rt, req.ns, req.name, options, req.dry_run)
        if gone:
            await self._crd_written(req, obj, gone=True)
        if req.rt.plural in RETURNS_DELETED_OBJECT or not gone:
            return response(data, 200 if gone or req.rt.plural == "pods" else 202)
        return response(dumps(_success(req.rt, req.name or "", obj["metadata"].get("uid"))))

    async def delete_collection(self, req: Request) -> web.Response:
        options = await self.delete_options(req)
        lsel, fsel = req.selectors()
        kvs, _ = await self.calls.call(self.registry.list_page, req.rt, req.ns, None, None, None)
        for kv in kvs:
            if matches(self.attrs.get(req.rt, kv.key, kv.mod_revision, kv.value), lsel, fsel):
                obj = decode(kv.value)
                try:
                    _, _, gone = await self.calls.call(self.registry.delete, req.rt, obj["metadata"].get("namespace"),
                                                       obj["metadata"]["name"], dict(options), req.dry_run)
                    if gone:
                        await self._crd_written(req, obj, gone=True)
                except StatusError as err:
                    if err.code != 404:
                        raise
        return response(dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}))
