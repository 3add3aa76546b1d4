"""Subresources with their own shapes: pods/binding, pods/eviction, pods/log, pods/exec, pods/attach
and */scale.

The scheduler binds through ``pods/binding``; ``kubectl drain`` posts ``pods/eviction``;
``kubectl logs`` reads ``pods/log``, which this server proxies to the kubelet of the pod's node, as it
relays ``kubectl exec``/``attach``/``cp`` WebSockets (``pods/exec``, ``pods/attach``);
``kubectl scale`` and autoscalers use ``deployments/scale`` as an ``autoscaling/v1`` Scale.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from labkit.client.selectors import format_selector
from labkit.streams import channels, relay

from . import errors
from .codec import decode, dumps, now_rfc3339
from .errors import StatusError
from .patch import apply_patch
from .request import Request, read_body, response
from .resources import BY_PLURAL
from .storecalls import StoreCalls


class KubeletClient:
    """The HTTP client the apiserver reaches kubelets with (``pods/log``), opened on first use."""

    def __init__(self) -> None:
        self._session: ClientSession | None = None

    def session(self) -> ClientSession:
        if self._session is None:
            self._session = ClientSession(timeout=ClientTimeout(total=None, sock_connect=5))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def binding(calls: StoreCalls, req: Request) -> web.Response:
    """POST pods/<p>/binding: set spec.nodeName once (a second bind is 409), mark PodScheduled."""
    body, _ = await read_body(req)
    if not isinstance(body, dict):
        raise errors.bad_request("the body must be a Binding object")
    target = body.get("target") or {}
    node = target.get("name") if isinstance(target, dict) else None
    if node is not None and not isinstance(node, str):
        raise errors.bad_request("Binding target.name must be a string")
    if not node:
        raise errors.invalid("Binding", "", req.name or "", [errors.cause("target.name", "Required value",
                                                                          "FieldValueRequired")])
    rt, name = req.rt, req.name or ""

    def bind() -> None:
        kv = calls.registry.get_kv(rt, req.ns, name)
        pod = decode(kv.value, kv.mod_revision)
        if pod["metadata"].get("deletionTimestamp"):
            raise errors.conflict(rt.plural, rt.group, name, "pod is being deleted, cannot be assigned to a host")
        current = (pod.get("spec") or {}).get("nodeName")
        if current:
            raise errors.conflict(rt.plural, rt.group, name,
                                  f"pod {name} is already assigned to node \"{current}\"")
        meta = body.get("metadata")
        uid = meta.get("uid") if isinstance(meta, dict) else None
        if uid and uid != pod["metadata"].get("uid"):
            raise errors.conflict(rt.plural, rt.group, name, "the UID in the binding does not match the pod")
        pod["spec"]["nodeName"] = node
        conds = [c for c in (pod.setdefault("status", {}).get("conditions") or [])
                 if c.get("type") != "PodScheduled"]
        conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                      "lastTransitionTime": now_rfc3339()})
        pod["status"]["conditions"] = conds
        calls.registry.write_raw(rt, req.ns, name, pod, kv)
    await calls.call(bind)
    return response(dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                           "code": 201}), 201)


async def evict(calls: StoreCalls, req: Request) -> web.Response:
    """policy/v1 Eviction (what ``kubectl drain`` posts): a graceful delete of the pod.

    Real Kubernetes first checks PodDisruptionBudgets; none are served here, so every eviction
    is allowed.
    """
    body, _ = await read_body(req)
    if not isinstance(body, dict):
        raise errors.bad_request("the body must be a policy/v1 Eviction object")
    options = body.get("deleteOptions") or {}
    if not isinstance(options, dict):
        raise errors.bad_request("Eviction.deleteOptions must be an object")
    await calls.call(calls.registry.delete, req.rt, req.ns, req.name, dict(options), req.dry_run)
    return response(dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                           "code": 201}), 201)


async def scale(calls: StoreCalls, req: Request) -> web.Response:
    """GET/PUT/PATCH */scale: the workload's replicas seen as an autoscaling/v1 Scale."""
    rt, name = req.rt, req.name or ""

    def to_scale(obj: dict) -> dict:
        meta = obj["metadata"]
        sel = (obj.get("spec") or {}).get("selector") or {}
        selector = format_selector(sel)
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": meta["name"], "namespace": meta.get("namespace"), "uid": meta.get("uid"),
                             "resourceVersion": meta.get("resourceVersion"),
                             "creationTimestamp": meta.get("creationTimestamp")},
                "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
                "status": {"replicas": (obj.get("status") or {}).get("replicas", 0), "selector": selector}}

    if req.http.method == "GET":
        obj = await calls.call(calls.registry.get, rt, req.ns, name)
        return response(dumps(to_scale(obj)))
    body, ct = await read_body(req, allow_patch=req.http.method == "PATCH")

    def patcher(current: dict) -> dict:
        scale = to_scale(current)
        if req.http.method == "PATCH":
            new_scale = apply_patch(ct, scale, body)
        else:
            if not isinstance(body, dict):
                raise errors.bad_request("the body must be a Scale object")
            new_scale = body
        if not isinstance(new_scale, dict) or not isinstance(new_scale.get("spec"), dict) or \
                not isinstance(new_scale.get("metadata") or {}, dict):
            raise errors.bad_request("the body must be an autoscaling/v1 Scale object")
        replicas = new_scale["spec"].get("replicas")
        if isinstance(replicas, int) and not isinstance(replicas, bool) and replicas > 2**31 - 1:
            raise errors.bad_request(f"json: cannot unmarshal number {replicas} into Go struct field "
                                     "ScaleSpec.spec.replicas of type int32")
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            raise errors.invalid("Scale", "autoscaling", name, [errors.cause(
                "spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0")])
        want_rv = (new_scale.get("metadata") or {}).get("resourceVersion")
        if want_rv and str(want_rv) != current["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.plural, rt.group, name, "the object has been modified; please apply "
                                  "your changes to the latest version and try again")
        current.setdefault("spec", {})["replicas"] = replicas
        return current
    obj, _ = await calls.call(calls.registry.patch, rt, req.ns, name, patcher, None, req.dry_run)
    return response(dumps(to_scale(obj)))


async def _pod_container(calls: StoreCalls, req: Request) -> tuple[dict, str]:
    """The pod a ``pods/SUB`` request names and the container it means (the only one, or ``?container=``)."""
    pod = await calls.call(calls.registry.get, req.rt, req.ns, req.name)
    spec = pod.get("spec") or {}
    names = [c.get("name") for c in spec.get("containers") or []]
    container = req.query.get("container")
    if not container:
        if len(names) != 1:
            raise errors.bad_request(f"a container name must be specified for pod {req.name}, choose one of: "
                                     f"[{' '.join(n for n in names if n)}]")
        container = names[0]
    elif container not in names + [c.get("name") for c in spec.get("initContainers") or []]:
        raise errors.bad_request(f"container {container} is not valid for pod {req.name}")
    return pod, container


async def _kubelet(calls: StoreCalls, req: Request, pod: dict) -> tuple[str, str]:
    """``http://HOST:PORT`` of the kubelet that runs ``pod``, and its node's name."""
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        raise errors.bad_request(f"pod {req.name} does not have a host assigned")
    try:
        node = await calls.call(calls.registry.get, BY_PLURAL["nodes"], None, node_name)
    except StatusError:
        raise errors.bad_request(f"node {node_name} of pod {req.name} is not registered") from None
    port = (((node.get("status") or {}).get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    if not port:
        raise errors.bad_request(f"node {node_name} publishes no kubelet endpoint "
                                 "(status.daemonEndpoints.kubeletEndpoint.Port)")
    host = "127.0.0.1"
    for a in (node.get("status") or {}).get("addresses") or []:
        if a.get("type") == "InternalIP" and a.get("address"):  # where the kubelet listens
            host = a["address"]
    return f"http://{host}:{port}", node_name


async def log(calls: StoreCalls, kubelets: KubeletClient, req: Request) -> web.StreamResponse:
    """GET pods/<p>/log: proxied to the kubelet that runs the pod (streamed when follow=true)."""
    pod, container = await _pod_container(calls, req)
    base, node_name = await _kubelet(calls, req, pod)
    url = f"{base}/containerLogs/{quote(req.ns or '')}/{quote(req.name or '')}/{quote(container)}"
    params = {k: v for k, v in req.query.items() if k in ("follow", "tailLines", "timestamps", "previous",
                                                          "sinceSeconds", "limitBytes")}
    follow = params.get("follow") in ("true", "1")
    try:
        upstream = await kubelets.session().get(url, params=params)
    except (ClientError, OSError) as exc:
        raise errors.StatusError(502, "InternalError",
                                 f"Get \"{url}\": the kubelet on {node_name} did not answer: {exc}") from None
    async with upstream:
        if upstream.status != 200:
            text = (await upstream.text())[:500]
            raise errors.bad_request(f"the kubelet on {node_name} answered {upstream.status}: {text}")
        resp = web.StreamResponse(status=200)
        resp.headers["Content-Type"] = "text/plain"
        if follow:
            resp.enable_chunked_encoding()
        await resp.prepare(req.http)
        try:
            async for chunk in upstream.content.iter_any():
                await resp.write(chunk)
            await resp.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass
        return resp


async def stream(calls: StoreCalls, kubelets: KubeletClient, req: Request) -> web.StreamResponse:
    """pods/exec, pods/attach, pods/portforward: upgrade to a WebSocket and relay it to the pod's kubelet.

    The checks a user can get wrong (no such pod or container, a pod not running, an old kubectl that
    asks for SPDY) are answered as a Status before the upgrade, so kubectl prints them as they are
    (kubectl retries a refused WebSocket over SPDY: that request gets the same answer).
    """
    http = req.http
    forward = req.sub == "portforward"
    protocols = channels.PORTFORWARD_PROTOCOLS if forward else channels.PROTOCOLS
    refused = channels.PORTFORWARD_SPDY_REFUSED if forward else channels.SPDY_REFUSED
    if forward:
        pod = await calls.call(calls.registry.get, req.rt, req.ns, req.name)
        container = ""
    else:
        pod, container = await _pod_container(calls, req)
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise errors.bad_request(f"cannot {'forward ports to' if forward else req.sub + ' into'} a container "
                                 f"in a completed pod; current phase is {phase}")
    if req.sub == "exec" and not req.query.getall("command", []):
        raise errors.bad_request("you must specify at least 1 command")
    # after the checks: kubectl falls back to SPDY when the WebSocket is refused, and shows that answer
    if http.headers.get("Upgrade", "").lower().startswith("spdy"):
        raise errors.bad_request(refused)
    ws = web.WebSocketResponse(protocols=protocols, max_msg_size=relay.MAX_MESSAGE, autoping=True)
    ready = ws.can_prepare(http)
    if not ready.ok or ready.protocol not in protocols:
        raise errors.bad_request(f"pods/{req.sub} is served over WebSocket with the protocol(s) "
                                 f"{', '.join(protocols)}; {refused}")
    base, node_name = await _kubelet(calls, req, pod)
    if forward:
        query = [(k, v) for k, v in req.query.items() if k == "ports"]
        url = f"{base}/portForward/{quote(req.ns or '')}/{quote(req.name or '')}"
    else:
        query = [(k, v) for k, v in req.query.items() if k in ("command", "stdin", "stdout", "stderr", "tty")]
        query.append(("container", container))
        url = f"{base}/{req.sub}/{quote(req.ns or '')}/{quote(req.name or '')}/{quote(container)}"
    try:
        upstream = await relay.connect(kubelets.session(), url + "?" + urlencode(query), ready.protocol)
    except (ClientError, OSError) as exc:
        raise errors.StatusError(502, "InternalError",
                                 f"the kubelet on {node_name} did not accept the {req.sub} stream: {exc}") from None
    await ws.prepare(http)
    await relay.relay(ws, upstream)
    return ws
