"""HorizontalPodAutoscaler (``autoscaling/v2``, stored) and its ``autoscaling/v1`` view.

v2 is the version kept in the store. v1 (which ``kubectl autoscale`` up to 1.33 posts) knows
only a CPU utilization target; :func:`to_v2` and :func:`to_v1` convert between them, as
kube-apiserver converts through its internal version. A v1 reader sees only the CPU metric.
"""

from __future__ import annotations

import copy

from . import errors

V2 = "autoscaling/v2"
V1 = "autoscaling/v1"
DEFAULT_CPU = 80  # kube's default target when an HPA names no metric


def _cpu_metric(percent: int) -> dict:
    return {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                        "averageUtilization": percent}}}


def default_hpa(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if not spec.get("metrics"):
        spec["metrics"] = [_cpu_metric(DEFAULT_CPU)]


def validate_hpa(obj: dict, old: dict | None) -> list:
    spec = obj.get("spec") or {}
    causes = []
    ref = spec.get("scaleTargetRef") or {}
    if not isinstance(ref, dict) or not ref.get("kind") or not ref.get("name"):
        causes.append(errors.cause("spec.scaleTargetRef", "Required value: kind and name", "FieldValueRequired"))
    mx, mn = spec.get("maxReplicas"), spec.get("minReplicas", 1)
    if not isinstance(mx, int) or mx < 1:
        causes.append(errors.cause("spec.maxReplicas", "Invalid value: must be greater than or equal to 1",
                                   "FieldValueInvalid"))
    if not isinstance(mn, int) or mn < 1:
        causes.append(errors.cause("spec.minReplicas", "Invalid value: must be greater than or equal to 1",
                                   "FieldValueInvalid"))
    elif isinstance(mx, int) and mn > mx:
        causes.append(errors.cause("spec.minReplicas", "Invalid value: must be less than or equal to maxReplicas",
                                   "FieldValueInvalid"))
    for i, m in enumerate(spec.get("metrics") or []):
        if not isinstance(m, dict) or m.get("type") not in ("Resource", "ContainerResource", "Pods", "Object",
                                                              "External"):
            causes.append(errors.cause(f"spec.metrics[{i}].type", "Unsupported value", "FieldValueNotSupported"))
    return causes


def to_v2(v1: dict) -> dict:
    """A v1 HPA as the v2 object the store keeps."""
    out = copy.deepcopy(v1)
    out["apiVersion"] = V2
    spec = out.setdefault("spec", {})
    pct = spec.pop("targetCPUUtilizationPercentage", None)
    spec["metrics"] = [_cpu_metric(int(pct))] if pct is not None else [_cpu_metric(DEFAULT_CPU)]
    st = out.get("status")
    if isinstance(st, dict):
        cur = st.pop("currentCPUUtilizationPercentage", None)
        if cur is not None:
            st["currentMetrics"] = [{"type": "Resource", "resource": {
                "name": "cpu", "current": {"averageUtilization": cur}}}]
    return out


def to_v1(v2: dict) -> dict:
    """The v1 view of a stored v2 HPA: its CPU utilization target and current value only."""
    out = copy.deepcopy(v2)
    out["apiVersion"] = V1
    spec = out.setdefault("spec", {})
    metrics = spec.pop("metrics", None) or []
    spec.pop("behavior", None)
    for m in metrics:
        res = m.get("resource") or {}
        if m.get("type") == "Resource" and res.get("name") == "cpu":
            pct = (res.get("target") or {}).get("averageUtilization")
            if pct is not None:
                spec["targetCPUUtilizationPercentage"] = pct
    st = out.get("status")
    if isinstance(st, dict):
        cur = st.pop("currentMetrics", None) or []
        st.pop("conditions", None)
        for m in cur:
            res = m.get("resource") or {}
            if m.get("type") == "Resource" and res.get("name") == "cpu":
                pct = (res.get("current") or {}).get("averageUtilization")
                if pct is not None:
                    st["currentCPUUtilizationPercentage"] = pct
    return out


class V1Routes:
    """``/apis/autoscaling/v1/...horizontalpodautoscalers``: converted, then served by the v2 routes.

    The apiserver asks itself over loopback for the v2 object (``base_url()``), so v1 gets every
    check, default and watch that v2 has; bodies going in become v2, answers coming out become v1.
    """

    def __init__(self, base_url, session):  # noqa: ANN001 - callables returning the URL and an aiohttp session
        self.base_url, self.session = base_url, session

    def add_to(self, router) -> None:  # noqa: ANN001 - aiohttp's UrlDispatcher
        from .routes import answering_errors

        base = "/apis/autoscaling/v1"
        for shape in ("/horizontalpodautoscalers{slash:/*}",
                      "/namespaces/{namespace}/horizontalpodautoscalers{slash:/*}",
                      "/namespaces/{namespace}/horizontalpodautoscalers/{name}{slash:/*}",
                      "/namespaces/{namespace}/horizontalpodautoscalers/{name}/{sub}{slash:/*}"):
            router.add_route("*", base + shape, answering_errors(self.handle))

    async def _call(self, method: str, path: str, query, headers: dict, body: bytes | None):  # noqa: ANN001
        # the caller's own token goes along, so the v2 request is authorized as the v1 one would be;
        # the loopback call reaches this same server, whose certificate needs no check
        url = self.base_url() + path
        return await self.session().request(method, url, params=query, headers=headers, data=body,
                                            ssl=False if url.startswith("https:") else None)

    async def handle(self, http):  # noqa: ANN001, ANN201 - aiohttp request and response
        import json

        from aiohttp import web

        from .patch import apply_patch

        path = "/apis/autoscaling/v2" + http.path[len("/apis/autoscaling/v1"):]
        ct = http.headers.get("Content-Type", "application/json")
        accept = http.headers.get("Accept", "application/json")
        table = "as=Table" in accept
        headers = {"Accept": accept if table else "application/json"}
        if "Authorization" in http.headers:
            headers["Authorization"] = http.headers["Authorization"]
        body = await http.read() if http.can_read_body else None
        method = http.method
        if method == "PATCH":  # patch the v1 view, then store it back as v2
            cur = await self._call("GET", path, {}, {**headers, "Accept": "application/json"}, None)
            async with cur:
                if cur.status != 200:
                    return web.Response(body=await cur.read(), status=cur.status, content_type="application/json")
                v1 = to_v1(await cur.json())
            patched = apply_patch(ct.split(";")[0].strip(), v1, json.loads(body or b"{}"))
            method, body, ct = "PUT", json.dumps(to_v2(patched)).encode(), "application/json"
        elif method in ("POST", "PUT") and body:
            if "json" not in ct and "yaml" not in ct:
                raise errors.unsupported_media_type(ct, "autoscaling/v1 takes JSON or YAML here")
            import yaml

            obj = yaml.safe_load(body) if "yaml" in ct else json.loads(body)
            if isinstance(obj, dict) and obj.get("kind") == "HorizontalPodAutoscaler":
                obj = to_v2(obj)
            body, ct = json.dumps(obj).encode(), "application/json"
        if body is not None:
            headers["Content-Type"] = ct
        up = await self._call(method, path, http.query, headers, body)
        async with up:
            if http.query.get("watch") in ("1", "true"):
                resp = web.StreamResponse(status=up.status, headers={"Content-Type": "application/json"})
                await resp.prepare(http)
                async for line in up.content:
                    if line.strip():
                        ev = json.loads(line)
                        if isinstance(ev.get("object"), dict) and ev["object"].get("kind") == "HorizontalPodAutoscaler":
                            ev["object"] = to_v1(ev["object"])
                        await resp.write(json.dumps(ev).encode() + b"\n")
                await resp.write_eof()
                return resp
            raw = await up.read()
            out_ct = up.headers.get("Content-Type", "application/json")
            if up.status < 300 and out_ct.startswith("application/json"):
                obj = json.loads(raw)
                if obj.get("kind") == "Table":  # rows may carry the whole object (includeObject=Object)
                    for row in obj.get("rows") or []:
                        if (row.get("object") or {}).get("kind") == "HorizontalPodAutoscaler":
                            row["object"] = to_v1(row["object"])
                    raw = json.dumps(obj).encode()
                elif obj.get("kind") == "HorizontalPodAutoscaler":
                    raw = json.dumps(to_v1(obj)).encode()
                elif obj.get("kind") == "HorizontalPodAutoscalerList":
                    obj["apiVersion"] = V1
                    obj["items"] = [to_v1(i) for i in obj.get("items") or []]
                    raw = json.dumps(obj).encode()
            return web.Response(body=raw, status=up.status, headers={"Content-Type": out_ct})
