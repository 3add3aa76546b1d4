"""Max requests in flight, as kube-apiserver's ``--max-requests-inflight`` and ``--max-mutating-requests-inflight``.

Past its limit a server that queues every request answers all of them late; one that refuses
the excess answers the rest on time, and the refused clients come back after ``Retry-After``.
kube-apiserver (without API Priority and Fairness) keeps two counts: read-only requests (GET,
HEAD, OPTIONS) and mutating ones. Over either limit it answers 429 Too Many Requests with
``Retry-After: 1``. Long-running requests - watches, exec, attach, port-forward, logs - are not
counted: they would hold a slot for as long as they stream. Watches have a cap of their own
(:func:`default_max_watches`, a 429 past it). Health probes are not counted, so a busy server
still looks alive to whoever watches it. A limit of 0 means no limit.

A request holds its slot until its reply is written, so a client that reads slowly is counted.
"""

from __future__ import annotations

import resource

from aiohttp import web

from .codec import dumps
from .request import JSON

MESSAGE = "Too many requests, please try again later."
RETRY_AFTER = 1
READ_ONLY = frozenset(("GET", "HEAD", "OPTIONS"))
LONG_RUNNING_SUBRESOURCES = frozenset(("exec", "attach", "portforward", "log", "proxy"))
PROBES = ("/healthz", "/livez", "/readyz")


def default_max_watches() -> int:
    """Open watches allowed at once: each holds a socket, so stay well inside the file limit.

    kube-apiserver has no watch count of its own (API Priority and Fairness and the HTTP/2 stream
    limit bound it); a server that runs out of file descriptors stops accepting anyone, so this
    one answers the watch past the cap with 429 instead, and keeps serving everyone else.
    """
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        soft = 1024
    if soft == resource.RLIM_INFINITY:
        soft = 65536
    return max(16, min(10_000, soft * 3 // 4 - 64))


def too_many_requests() -> web.Response:
    """The 429 reply: kube-apiserver's words, as a Status a client can read, and a Retry-After."""
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": MESSAGE,
              "reason": "TooManyRequests", "details": {"retryAfterSeconds": RETRY_AFTER}, "code": 429}
    resp = web.Response(body=dumps(status), status=429, headers={"Retry-After": str(RETRY_AFTER)})
    resp.headers["Content-Type"] = JSON
    return resp


def long_running(http: web.Request) -> bool:
    """Watches and streams (exec, attach, port-forward, logs) - kube-apiserver's long-running check."""
    if http.method == "GET" and http.query.get("watch") in ("true", "1"):
        return True
    path = http.path
    if not path.startswith(("/api/", "/apis/")):
        return False
    parts = path.rstrip("/").split("/")  # .../pods/NAME/exec: a subresource of a pod, service or node
    return len(parts) >= 4 and parts[-1] in LONG_RUNNING_SUBRESOURCES and parts[-3] in ("pods", "services", "nodes")


class InFlightLimit:
    """Counts the requests being served and turns away those over the limit (an aiohttp middleware)."""

    def __init__(self, max_read_only: int = 400, max_mutating: int = 200, max_watches: int | None = None):
        if max_read_only < 0 or max_mutating < 0 or (max_watches or 0) < 0:
            raise ValueError("in-flight limits must be 0 (no limit) or more")
        self.max_read_only = max_read_only
        self.max_mutating = max_mutating
        self.max_watches = default_max_watches() if max_watches is None else max_watches
        self.read_only = 0
        self.mutating = 0
        self.watches = 0
        self.rejected = 0  # how many requests got a 429, for benchmarks and the chaos tools

    @web.middleware
    async def middleware(self, http: web.Request, handler) -> web.StreamResponse:  # noqa: ANN001
        if http.path.startswith(PROBES):
            return await handler(http)
        if long_running(http):
            if not (http.method == "GET" and http.query.get("watch") in ("true", "1")):
                return await handler(http)
            if self.max_watches and self.watches >= self.max_watches:
                self.rejected += 1
                return too_many_requests()
            self.watches += 1
            try:
                return await handler(http)
            finally:
                self.watches -= 1
        mutating = http.method not in READ_ONLY
        limit = self.max_mutating if mutating else self.max_read_only
        current = self.mutating if mutating else self.read_only
        if limit and current >= limit:
            self.rejected += 1
            return too_many_requests()
        if mutating:
            self.mutating += 1
        else:
            self.read_only += 1
        try:
            resp = await handler(http)
            if isinstance(resp, web.Response) and not resp.prepared:
                try:
                    await resp.prepare(http)  # the slot is held until the reply is written, as in Go
                    await resp.write_eof()
                except ConnectionResetError:  # the client went away (a notebook's cluster stopping): nothing to send
                    pass
            return resp
        finally:
            if mutating:
                self.mutating -= 1
            else:
                self.read_only -= 1
