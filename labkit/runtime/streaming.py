"""The runtime's streaming server: where the CRI's ``Exec`` answer points.

In Kubernetes the kubelet asks the runtime (CRI ``Exec``) for a URL, then relays the client's
connection to it; the runtime's own small HTTP server (containerd's "streaming server") runs the
command and speaks the channel protocol. labkit does the same: :meth:`StreamingServer.exec_url`
keeps the request under a one-time token and returns ``http://127.0.0.1:PORT/exec/TOKEN``.
The server runs on its own thread and event loop, so it serves a gRPC CRI process as well as a
kubelet that holds its runtime in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import secrets
import struct
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from labkit.streams import channels as ch

#: a URL handed out and not used within this many seconds is forgotten (as the CRI's is)
TOKEN_TTL = 60.0


class ExecProcess:
    """A command started inside a container: something to wait for (its exit code)."""

    def wait(self) -> int:
        raise NotImplementedError


@dataclass
class PopenProcess(ExecProcess):
    """A command started through a host program (``runc exec``, ``docker exec``, a plain process)."""

    proc: object = field(repr=False)

    def wait(self) -> int:
        code = self.proc.wait()  # type: ignore[attr-defined]
        return 128 - code if code < 0 else code


#: start ``cmd`` with the three descriptors as its stdio; ``tty`` says they are a terminal
Spawner = Callable[[int, int, int, bool], ExecProcess]


@dataclass
class ExecRequest:
    spawn: Spawner
    command: list[str]
    tty: bool
    stdin: bool
    stdout: bool
    stderr: bool
    made: float = field(default_factory=time.monotonic)


class StreamingServer:
    """One per process, started on first use: ``shared().exec_url(...)``."""

    def __init__(self) -> None:
        self._requests: dict[str, ExecRequest] = {}
        self._forwards: dict[str, tuple[Callable[[int], object], str, float]] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.port = 0
        self._thread = threading.Thread(target=self._serve, name="labkit-streaming", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if not self.port:
            raise RuntimeError("the runtime's streaming server did not start")

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        app = web.Application()
        app.router.add_get("/exec/{token}", self._exec)
        app.router.add_get("/portforward/{token}", self._portforward)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        loop.run_forever()

    def exec_url(self, spawn: Spawner, command: list[str], tty: bool = False, stdin: bool = False,
                 stdout: bool = True, stderr: bool = True) -> str:
        """Keep an exec request; the URL that serves it once."""
        token = secrets.token_urlsafe(16)
        now = time.monotonic()
        with self._lock:
            for old in [t for t, r in self._requests.items() if now - r.made > TOKEN_TTL]:
                del self._requests[old]
            self._requests[token] = ExecRequest(spawn, list(command), tty, stdin, stdout, stderr and not tty)
        return f"http://127.0.0.1:{self.port}/exec/{token}"

    def portforward_url(self, connect: Callable[[int], object], pod: str) -> str:
        """Keep a port-forward request (``connect(port)`` opens a socket in the pod); its URL."""
        token = secrets.token_urlsafe(16)
        with self._lock:
            self._forwards[token] = (connect, pod, time.monotonic())
        return f"http://127.0.0.1:{self.port}/portforward/{token}"

    async def _portforward(self, http: web.Request) -> web.StreamResponse:
        from labkit.runtime import portforward as pf

        with self._lock:
            found = self._forwards.pop(http.match_info["token"], None)
        if found is None:
            return web.Response(status=404, text="unknown or used port-forward token; ask the runtime again\n")
        ws = web.WebSocketResponse(protocols=(pf.PROTOCOL, ch.V4), max_msg_size=0, autoping=True)
        ready = ws.can_prepare(http)
        if not ready.ok or ready.protocol not in (pf.PROTOCOL, ch.V4):
            return web.Response(status=400, text=f"port-forward needs a WebSocket with {pf.PROTOCOL} or {ch.V4}\n")
        if ready.protocol == ch.V4:
            try:
                ports = pf.requested_ports(http.query.getall("ports", []) + http.query.getall("port", []))
            except ValueError as exc:
                return web.Response(status=400, text=f"{exc}\n")
            await ws.prepare(http)
            await pf.ChannelPortForward(ws, found[0], found[1], ports).run()  # type: ignore[arg-type]
            return ws
        await ws.prepare(http)
        await pf.PortForwardSession(ws, found[0], found[1]).run()  # type: ignore[arg-type]
        return ws

    async def _exec(self, http: web.Request) -> web.StreamResponse:
        with self._lock:
            req = self._requests.pop(http.match_info["token"], None)
        if req is None:
            return web.Response(status=404, text="unknown or used exec token; ask the runtime again\n")
        ws = web.WebSocketResponse(protocols=ch.PROTOCOLS, max_msg_size=0, autoping=True)
        ready = ws.can_prepare(http)
        if not ready.ok or ready.protocol not in ch.PROTOCOLS:
            return web.Response(status=400, text=f"exec needs a WebSocket with one of {', '.join(ch.PROTOCOLS)}\n")
        await ws.prepare(http)
        await ExecSession(ws, ready.protocol, req).run()
        return ws


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def _readable(fd: int) -> bytes:
    """The next chunk from ``fd`` (b"" at end; a pty whose last holder closed reads as EIO)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            return os.read(fd, 65536)
        except BlockingIOError:
            pass
        except OSError:
            return b""
        fut: asyncio.Future[None] = loop.create_future()
        loop.add_reader(fd, _wake, fut)
        try:
            await fut
        finally:
            loop.remove_reader(fd)


async def _write_all(fd: int, data: bytes) -> bool:
    """Write every byte, waiting while the pipe is full; False once the reader has gone."""
    loop = asyncio.get_running_loop()
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
            view = view[n:]
            continue
        except BlockingIOError:
            pass
        except OSError:
            return False
        fut: asyncio.Future[None] = loop.create_future()
        loop.add_writer(fd, _wake, fut)
        try:
            await fut
        finally:
            loop.remove_writer(fd)
    return True


def _nonblocking(fd: int) -> int:
    os.set_blocking(fd, False)
    return fd


class ExecSession:
    """One command on one WebSocket: stdin in, stdout/stderr out, the exit code as a Status."""

    def __init__(self, ws: web.WebSocketResponse, protocol: str, req: ExecRequest):
        self.ws, self.protocol, self.req = ws, protocol, req
        self.stdin_fd: int | None = None
        self.tty_fd: int | None = None

    async def run(self) -> None:
        req, loop = self.req, asyncio.get_running_loop()
        mine: list[int] = []  # our ends
        theirs: list[int] = []  # the child's ends, closed once it has them
        try:
            if req.tty:
                master, slave = pty.openpty()
                mine.append(_nonblocking(master))
                theirs.append(slave)
                self.tty_fd = self.stdin_fd = master
                stdio = (slave, slave, slave)
                outputs = [(master, ch.STDOUT)]
            else:
                if req.stdin:
                    r, w = os.pipe()
                    self.stdin_fd = _nonblocking(w)
                    mine.append(w)
                    theirs.append(r)
                else:
                    r = os.open(os.devnull, os.O_RDONLY)
                    theirs.append(r)
                out_r, out_w = os.pipe()
                err_r, err_w = os.pipe()
                mine += [_nonblocking(out_r), _nonblocking(err_r)]
                theirs += [out_w, err_w]
                stdio = (r, out_w, err_w)
                outputs = [(out_r, ch.STDOUT), (err_r, ch.STDERR)]
            try:
                proc = await loop.run_in_executor(None, req.spawn, *stdio, req.tty)
            except Exception as exc:  # noqa: BLE001 - the client reads it on the error channel
                await self._send(ch.ERROR, ch.failure_status(str(exc)))
                return
            finally:
                for fd in theirs:
                    os.close(fd)
                theirs.clear()
            waiter = loop.run_in_executor(None, proc.wait)
            pumps = [asyncio.ensure_future(self._pump(fd, c)) for fd, c in outputs]
            reader = asyncio.ensure_future(self._read_client())
            await asyncio.gather(*pumps)
            code = await waiter
            await self._send(ch.ERROR, ch.exit_status(code, req.command))
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        finally:
            for fd in mine + theirs:
                with contextlib.suppress(OSError):
                    os.close(fd)
            with contextlib.suppress(Exception):
                await self.ws.close()

    async def _send(self, channel: int, data: bytes) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.send_bytes(ch.frame(channel, data))

    async def _pump(self, fd: int, channel: int) -> None:
        wanted = self.req.stdout if channel == ch.STDOUT else self.req.stderr
        while data := await _readable(fd):
            if wanted:
                await self._send(channel, data)

    def _close_stdin(self) -> None:
        if self.stdin_fd is not None and self.stdin_fd != self.tty_fd:
            with contextlib.suppress(OSError):
                os.close(self.stdin_fd)
        elif self.tty_fd is not None:  # a terminal's EOF is ^D
            with contextlib.suppress(OSError):
                os.write(self.tty_fd, b"\x04")
        self.stdin_fd = None

    async def _read_client(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                    break
                channel, data = ch.split(msg.data)
                if channel == ch.STDIN and self.stdin_fd is not None:
                    if not await _write_all(self.stdin_fd, data):
                        self._close_stdin()
                elif channel == ch.RESIZE and self.tty_fd is not None:
                    size = ch.resize(data)
                    if size:
                        with contextlib.suppress(OSError):
                            fcntl.ioctl(self.tty_fd, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
                elif channel == ch.CLOSE and self.protocol == ch.V5 and data[:1] == bytes((ch.STDIN,)):
                    self._close_stdin()
        finally:
            self._close_stdin()  # the client is gone: the command reads EOF, as under kubelet


_shared: StreamingServer | None = None
_shared_lock = threading.Lock()


def shared() -> StreamingServer:
    """This process's streaming server, started on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = StreamingServer()
        return _shared


def popen(argv: list[str], stdin: int, stdout: int, stderr: int, tty: bool, **kw) -> ExecProcess:
    """Start a host program on these descriptors; a terminal becomes its controlling tty."""
    import subprocess

    return PopenProcess(subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr, start_new_session=tty,
                                         close_fds=True, **kw))


@dataclass
class ForkedProcess(ExecProcess):
    """A command this process forked itself (the native runtime joins the namespaces directly)."""

    pid: int

    def wait(self) -> int:
        from labkit.oci.native.state import status_code

        _, status = os.waitpid(self.pid, 0)
        code, _sig = status_code(status)
        return code
