"""Discovery documents and OpenAPI: how clients learn which resources exist and how to patch them.

kubectl reads these before anything else. It maps ``po`` to ``pods`` from the short names here,
learns which subresources exist (``pods/log``, ``deployments/scale``), and, for ``kubectl apply``
with validation on, checks in ``/openapi/v3`` that PATCH takes a ``fieldValidation`` parameter.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .resources import RESOURCES, ResourceType, group_versions, in_group_version

VERSION_INFO = {"major": "1", "minor": "30", "gitVersion": "v1.30.0-labkit", "gitCommit": "labkit",
                "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "python",
                "compiler": "labkit", "platform": "linux/amd64"}

SUBRESOURCE_VERBS = {"status": ["get", "patch", "update"], "scale": ["get", "patch", "update"],
                     "binding": ["create"], "log": ["get"], "eviction": ["create"],
                     "exec": ["create", "get"], "attach": ["create", "get"], "portforward": ["create", "get"]}


def _subresource_kind(rt: ResourceType, sub: str) -> tuple[str, str, str]:
    if sub == "scale":
        return "autoscaling", "v1", "Scale"
    if sub == "binding":
        return "", "v1", "Binding"
    if sub == "log":
        return "", "v1", "Pod"
    if sub == "eviction":
        return "policy", "v1", "Eviction"
    if sub in ("exec", "attach", "portforward"):
        return "", "v1", {"exec": "PodExecOptions", "attach": "PodAttachOptions",
                          "portforward": "PodPortForwardOptions"}[sub]
    return rt.group, rt.version, rt.kind


def api_versions() -> dict:
    """GET /api: the core group's versions."""
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}


def api_group(group: str) -> dict:
    """One APIGroup entry: its versions and the preferred one."""
    versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in group_versions()[group]]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def api_group_list() -> dict:
    """GET /apis: every non-core group."""
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [api_group(g) for g in group_versions() if g]}


def resource_list(group: str, version: str) -> dict:
    """GET /api/v1 or /apis/<g>/<v>: the APIResourceList kubectl maps short names from."""
    gv = f"{group}/{version}" if group else version
    resources: list[dict[str, Any]] = []
    for rt in in_group_version(group, version):
        entry: dict[str, Any] = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
                                 "kind": rt.kind, "verbs": list(_verbs(rt))}
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        resources.append(entry)
        for sub in rt.subresources:
            g, v, k = _subresource_kind(rt, sub)
            e = {"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced, "kind": k,
                 "verbs": SUBRESOURCE_VERBS[sub]}
            if g != rt.group or v != rt.version:
                e["group"], e["version"] = g, v
            resources.append(e)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


def _verbs(rt: ResourceType) -> tuple[str, ...]:
    return ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


def aggregated(core: bool, version: str) -> dict:
    """``APIGroupDiscoveryList`` (apidiscovery.k8s.io ``version`` = v2 or v2beta1)."""
    items = []
    for group, versions in group_versions().items():
        if core != (group == ""):
            continue
        vlist = []
        for v in versions:
            res = []
            for rt in in_group_version(group, v):
                entry: dict[str, Any] = {
                    "resource": rt.plural,
                    "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
                    "scope": "Namespaced" if rt.namespaced else "Cluster",
                    "singularResource": rt.singular, "verbs": list(_verbs(rt))}
                if rt.short_names:
                    entry["shortNames"] = list(rt.short_names)
                if rt.categories:
                    entry["categories"] = list(rt.categories)
                subs = []
                for sub in rt.subresources:
                    g, sv, k = _subresource_kind(rt, sub)
                    subs.append({"subresource": sub, "responseKind": {"group": g, "version": sv, "kind": k},
                                 "verbs": SUBRESOURCE_VERBS[sub]})
                if subs:
                    entry["subresources"] = subs
                res.append(entry)
            vlist.append({"version": v, "resources": res, "freshness": "Current"})
        meta = {"name": group} if group else {}
        items.append({"metadata": meta, "versions": vlist})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}",
            "metadata": {}, "items": items}


# ---------------------------------------------------------------- OpenAPI v3

def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


# kinds served without a protobuf message in the field table: their schema is written here
_OWN_SCHEMAS = {("apiextensions.k8s.io", "CustomResourceDefinition"):
                "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
                ("certificates.k8s.io", "CertificateSigningRequest"):
                "io.k8s.api.certificates.v1.CertificateSigningRequest"}
# CSI snapshots are CRDs in Kubernetes (the external snapshotter's): named as kube-apiserver names a CRD's schema
_OWN_SCHEMAS.update({("snapshot.storage.k8s.io", kind): f"io.k8s.storage.snapshot.v1.{kind}"
                     for kind in ("VolumeSnapshotClass", "VolumeSnapshot", "VolumeSnapshotContent")})


def _schema_name(rt: ResourceType) -> str:
    from .openapi import schema_name
    from .protobuf import KIND_MESSAGES

    if rt.custom:  # as kube-apiserver names them: the group reversed (com.example.v1.Widget)
        return ".".join(reversed(rt.group.split("."))) + f".{rt.version}.{rt.kind}"
    if (rt.group_version, rt.kind) not in KIND_MESSAGES:  # an open schema under kube's name for the kind
        return _OWN_SCHEMAS.get((rt.group, rt.kind)) or f"io.k8s.api.{rt.group.split('.')[0]}.{rt.version}.{rt.kind}"
    return schema_name(KIND_MESSAGES[(rt.group_version, rt.kind)])


def _own_schema(rt: ResourceType) -> dict[str, Any]:
    """A custom kind's schema: its openAPIV3Schema with the apiserver's own fields; the CRD kind's, open."""
    gvk = [{"group": rt.group, "version": rt.version, "kind": rt.kind}]
    body: dict[str, Any] = dict(rt.openapi_schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    props = dict(body.get("properties") or {})
    props.update({"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                  "metadata": {"allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1."
                                                  "ObjectMeta"}]}})
    body["properties"] = props
    body.setdefault("type", "object")
    body["x-kubernetes-group-version-kind"] = gvk
    return body


def openapi_document(group: str, version: str) -> dict:
    """The OpenAPI 3 document for one group/version: operations with their GVK and parameters, and the
    schemas of every type they use (for ``kubectl explain`` and ``kubectl apply``'s patch keys)."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    params = [{"name": n, "in": "query", "schema": {"type": "string"}}
              for n in ("dryRun", "fieldManager", "fieldValidation", "pretty")]
    for rt in in_group_version(group, version):
        gvk = [{"group": rt.group, "version": rt.version, "kind": rt.kind}]
        ref = {"$ref": f"#/components/schemas/{_schema_name(rt)}"}
        base = f"/{_gv_path(group, version)}/" + ("namespaces/{namespace}/" if rt.namespaced else "")

        def op(verb: str, action: str, rt: ResourceType = rt, ref: dict = ref, gvk: list = gvk) -> dict:
            body = {"content": {"application/json": {"schema": ref}}}
            o: dict[str, Any] = {"operationId": f"{verb}{rt.kind}", "x-kubernetes-action": action,
                                 "x-kubernetes-group-version-kind": gvk[0], "parameters": params,
                                 "responses": {"200": {"description": "OK", "content": body["content"]}}}
            if verb in ("create", "replace", "patch"):
                o["requestBody"] = body
            return o
        paths[base + rt.plural] = {"get": op("list", "list"), "post": op("create", "post")}
        paths[base + rt.plural + "/{name}"] = {"get": op("read", "get"), "put": op("replace", "put"),
                                               "patch": op("patch", "patch"), "delete": op("delete", "delete")}
    from .openapi import component_schemas

    schemas.update(component_schemas([(rt.group, rt.version, rt.kind) for rt in in_group_version(group, version)]))
    own = [rt for rt in in_group_version(group, version) if rt.custom or _schema_name(rt) not in schemas]
    if own:
        schemas.update(component_schemas([], ("meta.v1.ObjectMeta",)))
        for rt in own:
            schemas[_schema_name(rt)] = _own_schema(rt)
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes (labkit)", "version": "v1.30.0"},
            "paths": paths, "components": {"schemas": schemas}}


_DOC_CACHE: dict[tuple[str, str], tuple[bytes, str]] = {}


def forget_documents(groups: set[str]) -> None:
    """Drop the cached OpenAPI documents of these groups (a CRD came, changed or went)."""
    for key in [k for k in _DOC_CACHE if k[0] in groups]:
        del _DOC_CACHE[key]


def openapi_bytes(group: str, version: str) -> tuple[bytes, str]:
    """(document bytes, hash) for one group/version, computed once."""
    key = (group, version)
    if key not in _DOC_CACHE:
        data = json.dumps(openapi_document(group, version)).encode()
        _DOC_CACHE[key] = (data, hashlib.sha512(data).hexdigest()[:32].upper())
    return _DOC_CACHE[key]


def openapi_root() -> dict:
    """GET /openapi/v3: where each group/version's document is, with a content hash."""
    paths = {}
    for group, versions in group_versions().items():
        for v in versions:
            p = _gv_path(group, v)
            paths[p] = {"serverRelativeURL": f"/openapi/v3/{p}?hash={openapi_bytes(group, v)[1]}"}
    return {"paths": paths}


# ---------------------------------------------------------------- OpenAPI v2 (protobuf)

def openapi_v2_protobuf() -> bytes:
    """A gnostic ``openapi.v2.Document`` with one PATCH operation per kind.

    kubectl 1.27/1.28 fetch this (as protobuf only) before ``apply``/``create`` with validation on.
    What they need from it: each kind's PATCH lists a ``fieldValidation`` query parameter, so they
    leave validation to the server (``?fieldValidation=Strict``). Schemas are not included, so
    kubectl falls back to its built-in types for strategic-merge patch keys.
    """
    from .protowire import field_bytes, field_str

    paths = b""
    for rt in RESOURCES:
        base = "/" + _gv_path(rt.group, rt.version) + "/" + ("namespaces/{namespace}/" if rt.namespaced else "")
        query = field_str(2, "query") + field_str(4, "fieldValidation") + field_str(6, "string")
        param = field_bytes(1, field_bytes(2, field_bytes(3, query)))  # ParametersItem>Parameter>NonBody>Query
        gvk_yaml = f"group: \"{rt.group}\"\nkind: {rt.kind}\nversion: {rt.version}\n"
        ext = field_str(1, "x-kubernetes-group-version-kind") + field_bytes(2, field_str(2, gvk_yaml))
        op = field_str(5, f"patch{rt.kind}") + field_bytes(8, param) + field_bytes(13, ext)
        item = field_bytes(8, op)  # PathItem.patch
        paths += field_bytes(2, field_str(1, base + rt.plural + "/{name}") + field_bytes(2, item))
    info = field_str(1, "Kubernetes (labkit)") + field_str(2, VERSION_INFO["gitVersion"])
    return field_str(1, "2.0") + field_bytes(2, info) + field_bytes(8, paths)
