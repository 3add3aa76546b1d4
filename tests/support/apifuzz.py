"""An API fuzzing campaign: hypothesis strategies for hostile requests, and the invariants each answer keeps.

Every served resource and verb, with malformed and adversarial bodies (mutated valid objects,
random JSON, random bytes, deep nesting, wrong types, huge numbers), headers, query parameters
(selectors, resourceVersion, continue, limit, watch ...), content types (JSON, YAML, protobuf,
merge, strategic-merge, JSON and apply patches) and names. Each answer is checked:

- never a 5xx (kube-apiserver's own 504 for a too-large resourceVersion is the one exception);
- never a hang: every request has a client timeout, and a watch always asks for ``timeoutSeconds``;
- every answer is a well-formed ``Status`` (code, reason and message) or object (or watch events);
- a rejected request (4xx), or one made with ``dryRun=All``, leaves the store's revision unchanged;
- the server keeps answering its health check.

Used by ``tests/test_api_fuzz.py`` (a bounded campaign with a fixed seed) and
``benchmarks/bench_fuzz.py`` (a long one that prints the counts).
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import requests
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from labkit.controlplane.apiserver.resources import BY_PATH

TIMEOUT = 10.0  # seconds a request may take before it counts as a hang
NAMES = ["fz-a", "fz-b", "fz-c"]
NAMESPACES = ["default", "fuzz"]
CRD_GROUP, CRD_PLURAL = "fuzz.example.com", "widgets"

POD_SPEC = {"containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "3600"],
                            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                            "ports": [{"containerPort": 80}], "env": [{"name": "A", "value": "b"}]}]}
TEMPLATE = {"metadata": {"labels": {"app": "fz"}}, "spec": POD_SPEC}
SPECS: dict[str, dict] = {
    "pods": {"spec": POD_SPEC},
    "namespaces": {},
    "nodes": {"spec": {"unschedulable": False}, "status": {"capacity": {"cpu": "2", "pods": "110"}}},
    "events": {"involvedObject": {"kind": "Pod", "name": "fz-a"}, "reason": "Fuzz", "message": "m", "type": "Normal"},
    "services": {"spec": {"selector": {"app": "fz"}, "ports": [{"port": 80, "targetPort": 8080}]}},
    "endpoints": {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]},
    "configmaps": {"data": {"k": "v"}},
    "secrets": {"data": {"k": "dg=="}, "type": "Opaque"},
    "serviceaccounts": {},
    "persistentvolumes": {"spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                   "hostPath": {"path": "/tmp/fz"}}},
    "persistentvolumeclaims": {"spec": {"accessModes": ["ReadWriteOnce"],
                                        "resources": {"requests": {"storage": "1Gi"}}}},
    "deployments": {"spec": {"replicas": 1, "selector": {"matchLabels": {"app": "fz"}}, "template": TEMPLATE}},
    "replicasets": {"spec": {"replicas": 1, "selector": {"matchLabels": {"app": "fz"}}, "template": TEMPLATE}},
    "daemonsets": {"spec": {"selector": {"matchLabels": {"app": "fz"}}, "template": TEMPLATE}},
    "statefulsets": {"spec": {"replicas": 1, "serviceName": "fz", "selector": {"matchLabels": {"app": "fz"}},
                              "template": TEMPLATE}},
    "jobs": {"spec": {"template": {"spec": {**POD_SPEC, "restartPolicy": "Never"}}}},
    "cronjobs": {"spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {
        "spec": {**POD_SPEC, "restartPolicy": "Never"}}}}}},
    "leases": {"spec": {"holderIdentity": "fz", "leaseDurationSeconds": 15}},
    "storageclasses": {"provisioner": "fuzz.example.com/p"},
    "csidrivers": {"spec": {"attachRequired": False}},
    "csinodes": {"spec": {"drivers": []}},
    "customresourcedefinitions": {"spec": {
        "group": CRD_GROUP, "scope": "Namespaced",
        "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
            "type": "object", "properties": {"spec": {"type": "object", "properties": {
                "size": {"type": "integer", "minimum": 0}, "color": {"type": "string", "enum": ["red", "blue"]}}}}}}}]}},
    "priorityclasses": {"value": 1000},
    "widgets": {"spec": {"size": 3, "color": "red"}},
}


def widget_crd() -> dict:
    """A CRD the campaign creates first, so custom resources are fuzzed too."""
    crd = json.loads(json.dumps(SPECS["customresourcedefinitions"]))
    crd["spec"]["names"] = {"plural": CRD_PLURAL, "singular": "widget", "kind": "Widget"}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{CRD_PLURAL}.{CRD_GROUP}"}, **crd}


@dataclass(frozen=True)
class Served:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    subresources: tuple[str, ...]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, ns: str | None, name: str | None = None, sub: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and ns is not None:
            base += f"/namespaces/{ns}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{name}"
            if sub is not None:
                base += f"/{sub}"
        return base

    def object(self, name: str) -> dict:
        return {"apiVersion": self.api_version, "kind": self.kind, "metadata": {"name": name},
                **json.loads(json.dumps(SPECS.get(self.plural, {})))}


SERVED = [Served(g, v, p, rt.kind, rt.namespaced, tuple(sorted(rt.subresources))) for (g, v, p), rt in BY_PATH.items()]
SERVED.append(Served(CRD_GROUP, "v1", CRD_PLURAL, "Widget", True, ()))

# ------------------------------------------------------------------ strategies
JSON_TYPES = ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf",
              "application/merge-patch+json", "application/strategic-merge-patch+json",
              "application/json-patch+json", "application/apply-patch+yaml"]
ODD_TYPES = ["", "text/plain", "application/xml", "application/json; charset=utf-16", "*/*", "application/x-yaml",
             "multipart/form-data; boundary=x", "application/json;" + "x" * 200]
ACCEPTS = ["application/json", "application/json;as=Table;v=v1;g=meta.k8s.io", "application/yaml",
           "application/vnd.kubernetes.protobuf", "*/*", "text/html", "", "application/json;as=Table;v=v1"]

big_ints = st.sampled_from([0, -1, 1, 2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 2**64, 10**30, 10**300])
short_text = st.text(max_size=6)  # hypothesis draws text a character at a time: keep it short and rare
keys = st.one_of(st.sampled_from(["name", "metadata", "spec", "status", "x", "", "ü", "$patch", "a.b", "-"]), short_text)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), big_ints,
                    st.floats(allow_nan=True, allow_infinity=True), short_text,
                    st.sampled_from(["", "\x00", "ü" * 10, "a" * 5000, "1e999999999", "-5Gi", "500m", "NaN",
                                     "2020-01-01T00:00:00Z", "${x}", "../..", "<script>"]))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                           st.dictionaries(keys, inner, max_size=3)),
                           max_leaves=6)
names = st.one_of(st.sampled_from(NAMES), st.sampled_from(NAMES), st.sampled_from(NAMES), st.sampled_from(
    ["", "UPPER", "a" * 300, "..", ".", "a b", "a%2Fb", "ü", "-x", "x-", "1" * 64, "a.b.c", "a_b", "%00", "~"]),
    short_text)
namespaces = st.one_of(st.sampled_from(NAMESPACES), st.sampled_from(NAMESPACES), st.sampled_from(["kube-system", "nope", "BAD_NS", "", "a" * 70]))
label_selectors = st.one_of(st.sampled_from(["app=fz", "app!=fz", "app in (fz,x)", "!app", "app", "app notin ()",
                                              "app=", "=x", "a in (", "a,,b", "app==fz", "x" * 300 + "=y",
                                              "app in (fz", "a b", "app>1", "app=fz,app=fz"]), short_text)
field_selectors = st.one_of(st.sampled_from(["metadata.name=fz-a", "metadata.namespace!=default",
                                              "spec.nodeName=n1", "status.phase=Running", "spec.unknown=x",
                                              "metadata.name", "=x", "metadata.name==a,b", "spec.nodeName="]),
                            short_text)
numbers = st.one_of(st.integers(-10, 10_000).map(str), big_ints.map(str),
                    st.sampled_from(["", "abc", "1.5", "-0", "+3", " 3", "0x10", "1e3", "１２", "9" * 30]))
continues = st.one_of(short_text, st.binary(max_size=30).map(lambda b: base64.urlsafe_b64encode(b).decode()),
                      st.builds(lambda rv, start: base64.urlsafe_b64encode(json.dumps(
                          {"rv": rv, "start": start}).encode()).decode().rstrip("="),
                          st.one_of(st.integers(-5, 10**6), short_text, st.none()),
                          st.one_of(st.sampled_from(["/registry/pods/default/fz-a", "/registry/", "", "x"]),
                                    st.integers(), st.none())))
QUERY = {
    "labelSelector": label_selectors, "fieldSelector": field_selectors, "resourceVersion": numbers,
    "resourceVersionMatch": st.sampled_from(["Exact", "NotOlderThan", "", "bogus"]), "continue": continues,
    "limit": numbers, "dryRun": st.sampled_from(["All", "all", "", "None"]),
    "fieldValidation": st.sampled_from(["Strict", "Warn", "Ignore", "strict", ""]),
    "fieldManager": st.sampled_from(["fz", "", "a" * 200]), "force": st.sampled_from(["true", "false", "x"]),
    "propagationPolicy": st.sampled_from(["Background", "Foreground", "Orphan", "Sideways", ""]),
    "gracePeriodSeconds": numbers, "timeoutSeconds": numbers, "pretty": st.sampled_from(["true", "1", "x"]),
    "allowWatchBookmarks": st.sampled_from(["true", "false", "x"]),
    "sendInitialEvents": st.sampled_from(["true", "false"]), "includeObject": st.sampled_from(["None", "Object", "x"]),
    "follow": st.sampled_from(["true", "false"]), "tailLines": numbers, "container": st.sampled_from(["c", "x"]),
}


@cache
def _ints(lo: int, hi: int) -> st.SearchStrategy:
    """Strategies are built once: hypothesis checks each new one, which costs more than a draw."""
    return st.integers(lo, hi)


@cache
def _pick(options: tuple) -> st.SearchStrategy:
    return st.sampled_from(options)


@cache
def _patch_ops(pointers: tuple) -> st.SearchStrategy:
    ops = st.fixed_dictionaries({"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "x"]),
                                 "path": st.sampled_from(pointers)},
                                optional={"value": json_values, "from": st.sampled_from(pointers)})
    return st.lists(ops, max_size=4)


BYTES_200, BYTES_120, BOOLS = st.binary(max_size=200), st.binary(max_size=120), st.booleans()

METHODS = {"collection": ("GET", "GET", "POST", "POST", "POST", "DELETE"),
           "object": ("GET", "PUT", "PUT", "PATCH", "PATCH", "PATCH", "DELETE"),
           "subresource": ("GET", "PUT", "PATCH", "POST")}
QUERY_KEYS = st.lists(st.sampled_from(sorted(QUERY)), max_size=4)


@dataclass
class FuzzRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes | None

    def __repr__(self) -> str:  # what hypothesis prints for a failing example
        body = self.body if self.body is None or len(self.body) < 300 else self.body[:300] + b"..."
        return f"{self.method} {self.path}?{urllib.parse.urlencode(self.query)} {self.headers} {body!r}"


def _pointers(obj: Any, prefix: str = "") -> list[str]:
    """Every JSON pointer into ``obj``."""
    out = [prefix or "/"] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _pointers(v, f"{prefix}/{k.replace('~', '~0').replace('/', '~1')}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _pointers(v, f"{prefix}/{i}")
        out.append(f"{prefix}/-")
    return out


def _set(obj: Any, pointer: str, value: Any, delete: bool) -> None:
    """Put ``value`` at ``pointer`` (or delete it) in place; a pointer that no longer fits does nothing."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    for p in parts[:-1]:
        if isinstance(obj, dict) and p in obj:
            obj = obj[p]
        elif isinstance(obj, list) and p.isdigit() and int(p) < len(obj):
            obj = obj[int(p)]
        else:
            return
    last = parts[-1] if parts else ""
    if isinstance(obj, dict):
        if delete:
            obj.pop(last, None)
        else:
            obj[last] = value
    elif isinstance(obj, list) and last.isdigit() and int(last) < len(obj):
        if delete:
            obj.pop(int(last))
        else:
            obj[int(last)] = value


def mutated(draw: Callable, base: dict) -> dict:
    """A valid object with a few of its fields replaced, removed or added."""
    obj = json.loads(json.dumps(base))
    for _ in range(draw(_pick((0, 0, 1, 1, 2, 3)))):  # often none: a valid object reaches the registry
        pointers = _pointers(obj)
        if not pointers:
            break
        where = pointers[draw(_ints(0, len(pointers) - 1))]
        how = draw(_pick(("set", "set", "delete", "add")))
        if how == "add":
            where = where.rstrip("-").rstrip("/") + "/" + draw(_pick(("x", "status", "apiVersion", "kind",
                                                                      "metadata", "spec", "$patch", "$retainKeys",
                                                                      "$setElementOrder/containers",
                                                                      "$deleteFromPrimitiveList/finalizers")))
        _set(obj, where, draw(json_values), how == "delete")
    return obj


def _deep(depth: int, yaml_form: bool) -> bytes:
    if yaml_form:
        return b"[" * depth + b"]" * depth
    return b'{"metadata":' * depth + b"{}" + b"}" * depth


def _protobuf(api_version: str, kind: str, payload: bytes) -> bytes:
    def ld(num: int, data: bytes) -> bytes:
        out, n = bytes([num << 3 | 2]), len(data)
        while n >= 0x80:
            out += bytes([n & 0x7F | 0x80])
            n >>= 7
        return out + bytes([n]) + data
    return b"k8s\x00" + ld(1, ld(1, api_version.encode()) + ld(2, kind.encode())) + ld(2, payload)


def make_body(draw: Callable, target: Served, name: str, content_type: str) -> bytes | None:
    """A request body in ``content_type``: usually a mutated valid object, sometimes pure noise."""
    choice = draw(_pick(("object", "object", "object", "patch", "json", "bytes", "deep", "none")))
    if choice == "none":
        return None
    if choice == "bytes":
        return draw(BYTES_200)
    if choice == "deep":
        return _deep(draw(_pick((50, 99, 101, 150, 900, 5000, 100_000))), "yaml" in content_type)
    base = target.object(name if draw(BOOLS) else draw(names))
    if choice == "json":
        value: Any = draw(json_values)
    elif choice == "patch" or content_type == "application/json-patch+json":
        pointers = tuple(_pointers(target.object("x")) + ["", "/", "/metadata/labels/a~1b", "/x/y/z", "/metadata/~2",
                                                          "/spec/containers/99999999999999999999", "/status/-"])
        value = draw(_patch_ops(pointers)) if draw(_ints(0, 4)) else draw(json_values)
    else:
        value = mutated(draw, base)
    if content_type == "application/vnd.kubernetes.protobuf":
        payload = draw(BYTES_120)
        return _protobuf(draw(_pick((target.api_version, "v1", "x/y"))), draw(_pick((target.kind, "Pod", "Nope"))),
                         payload)
    if "yaml" in content_type:
        try:
            return yaml.safe_dump(value, allow_unicode=draw(BOOLS)).encode("utf-8", "surrogatepass")
        except (yaml.YAMLError, UnicodeEncodeError):
            return b"{}"
    return json.dumps(value, ensure_ascii=draw(BOOLS)).encode("utf-8", "surrogatepass")


@st.composite
def fuzz_requests(draw: Callable) -> FuzzRequest:
    """One hostile request against some served resource (or, now and then, somewhere else)."""
    target = draw(_pick(tuple(SERVED)))
    shape = draw(_pick(("collection", "object", "object", "subresource")))
    ns = draw(namespaces) if target.namespaced else None
    if target.namespaced and draw(_ints(0, 9)) == 0:
        ns = None  # a namespaced collection across every namespace
    name = draw(names)
    quoted = urllib.parse.quote(name, safe="") if draw(_ints(0, 4)) else name
    sub = draw(_pick((*target.subresources, "status", "nope"))) if shape == "subresource" else None
    path = target.path(ns, None if shape == "collection" else quoted, sub)
    if draw(_ints(0, 30)) == 0:
        path = draw(_pick(("/api", "/apis", "/api/v1", "/apis/apps/v1", "/version", "/openapi/v3",
                                     "/openapi/v3/api/v1", "/openapi/v2", "/apis/nope/v1/x", "/api/v2/pods", "//",
                                     "/api/v1/namespaces/default/pods/a/b/c/d", "/%2e%2e/etc/passwd")))
    if draw(_ints(0, 9)) == 0:
        method = draw(_pick(("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")))
    else:  # mostly the verbs the path takes, so that requests get past routing
        method = draw(_pick(METHODS[shape]))
    query = {key: draw(QUERY[key]) for key in draw(QUERY_KEYS)}
    if method == "GET" and shape == "collection" and draw(_ints(0, 39)) == 0:  # each watch takes a second
        query["watch"] = draw(_pick(("true", "1", "false", "x")))
    if query.get("watch") in ("true", "1") or query.get("follow") == "true":
        query["timeoutSeconds"] = "1"  # a watch is bounded by the client, as every real one is
    if draw(_ints(0, 6)) == 0:
        content_type = draw(_pick(tuple(JSON_TYPES + ODD_TYPES)))
    elif method == "PATCH":
        content_type = draw(_pick(tuple(JSON_TYPES[3:])))
    else:
        content_type = draw(_pick(tuple(JSON_TYPES[:1] * 4 + JSON_TYPES[1:3])))
    headers = {"Accept": draw(_pick(tuple(ACCEPTS)))}
    if content_type:
        headers["Content-Type"] = content_type
    body = make_body(draw, target, name, content_type) if method in ("POST", "PUT", "PATCH", "DELETE") else None
    if draw(_ints(0, 20)) == 0:
        headers["Content-Encoding"] = draw(_pick(("gzip", "deflate", "br", "x")))
    return FuzzRequest(method, path, query, headers, body)


# ------------------------------------------------------------------ invariants
@dataclass
class Campaign:
    """Sends requests, checks every answer, and counts what happened."""

    url: str
    revision: Callable[[], int]
    alive: Callable[[], bool]
    strict: bool = True  # raise at the first violation (tests); else count them (benchmark)
    watches_left: int | None = None  # each watch lasts its second: a short campaign sends only so many
    sent: int = 0
    codes: Counter = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    unchanged_violations: int = 0
    session: requests.Session = field(default_factory=requests.Session)

    def setup(self) -> None:
        """The namespaces and the CRD the requests name, so that many of them reach the registry."""
        for ns in NAMESPACES:
            self.session.post(self.url + "/api/v1/namespaces", json={"metadata": {"name": ns}}, timeout=TIMEOUT)
        self.session.post(self.url + "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=widget_crd(),
                          timeout=TIMEOUT)
        for target in SERVED:  # objects for the updates, patches and deletes to find
            if target.plural in ("namespaces", "customresourcedefinitions"):
                continue
            for ns in NAMESPACES if target.namespaced else [None]:
                for name in NAMES[:2]:
                    self.session.post(self.url + target.path(ns), json=target.object(name), timeout=TIMEOUT)

    def violation(self, req: FuzzRequest, what: str) -> None:
        text = f"{what}: {req!r}"
        self.violations.append(text)
        if self.strict:
            raise AssertionError(text)

    def send(self, req: FuzzRequest) -> None:
        """Send one request and check its answer against every invariant."""
        if req.query.get("watch") in ("true", "1") and self.watches_left is not None:
            if self.watches_left <= 0:
                req.query = {k: v for k, v in req.query.items() if k != "watch"}  # a list instead
            self.watches_left -= 1
        before = self.revision()
        self.sent += 1
        try:
            resp = self.session.request(req.method, self.url + req.path, params=req.query, headers=req.headers,
                                        data=req.body, timeout=TIMEOUT)
        except requests.Timeout:
            self.codes["hang"] += 1
            return self.violation(req, f"no answer within {TIMEOUT} s")
        except requests.ConnectionError as exc:
            self.codes["dropped"] += 1
            self.session = requests.Session()
            if not self.alive():
                return self.violation(req, "the server died")
            return self.violation(req, f"the connection was dropped ({exc})")
        self.codes[resp.status_code] += 1
        code = resp.status_code
        if code >= 500 and not (code == 504 and b"Too large resource version" in resp.content):
            return self.violation(req, f"{code} {resp.text[:300]}")
        if req.method != "HEAD":
            problem = self.malformed(req, resp)
            if problem:
                return self.violation(req, f"{code}: {problem}: {resp.text[:200]}")
        if (code >= 400 or req.query.get("dryRun") == "All") and self.revision() != before:
            self.unchanged_violations += 1
            return self.violation(req, f"{code} changed the store's revision from {before} to {self.revision()}")
        return None

    @staticmethod
    def malformed(req: FuzzRequest, resp: requests.Response) -> str | None:
        """What is wrong with the shape of an answer (None: it is a Status, an object or a stream)."""
        code = resp.status_code
        if code >= 400:
            try:
                status = resp.json()
            except ValueError:
                return "an error that is not a JSON Status"
            if not isinstance(status, dict) or status.get("kind") != "Status" or status.get("code") != code:
                return "an error that is not a Status with its code"
            if not isinstance(status.get("reason"), str) or not isinstance(status.get("message"), str):
                return "a Status without reason or message"
            return None
        ctype = resp.headers.get("Content-Type", "")
        if "protobuf" in ctype or not resp.content or req.path.endswith("/log") or req.path == "/openapi/v2":
            return None
        lines = resp.content.splitlines()
        if req.query.get("watch") in ("true", "1") and req.method == "GET" and (
                len(lines) != 1 or b'"type":' in lines[0][:12]):
            for line in lines:
                try:
                    event = json.loads(line)
                except ValueError:
                    return "a watch line that is not JSON"
                if event.get("type") not in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR") or \
                        not isinstance(event.get("object"), dict):
                    return "a watch line that is not an event"
            return None
        try:
            obj = resp.json()
        except ValueError:
            return "a success that is not JSON"
        if not isinstance(obj, dict) or not (obj.get("kind") or "paths" in obj or "major" in obj):
            return "a success that is not an object"
        return None


BATCH = 10


def run(campaign: Campaign, count: int, derandomize: bool = True) -> Campaign:
    """Send about ``count`` generated requests through ``campaign``; with ``derandomize`` (a fixed
    seed) the same requests each run.

    Each hypothesis example is a batch of requests drawn independently: hypothesis builds new
    examples by varying earlier ones, so one request per example would repeat itself a lot. A
    failing batch shrinks to the smallest sequence of requests that still fails.
    """
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if campaign.strict else [])

    @settings(max_examples=-(-count // BATCH), derandomize=derandomize, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), phases=phases, print_blob=False)
    @given(st.lists(fuzz_requests(), min_size=BATCH, max_size=BATCH))
    def batch(reqs: list[FuzzRequest]) -> None:
        for req in reqs:
            campaign.send(req)
            if campaign.sent % 250 == 0 and not campaign.alive():
                campaign.violation(req, "the server stopped answering its health check")

    batch()
    return campaign
