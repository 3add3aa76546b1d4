"""The runtime's side of ``kubectl port-forward``: SPDY streams in, TCP connections in the pod's netns out.

Each connection kubectl accepts on its local port becomes a pair of SPDY streams (``streamtype``
``error`` and ``data``, same ``requestid``). For each data stream this opens a TCP connection to
``127.0.0.1:PORT`` *inside the pod's network namespace* (a thread enters the namespace, connects,
and comes back; the socket stays where it was made) and copies bytes both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from labkit.streams import spdy

PROTOCOL = "SPDY/3.1+portforward.k8s.io"
CHUNK = 32 * 1024


def connect_in_netns(netns_path: str | None, port: int, timeout: float = 5.0) -> socket.socket:
    """A TCP connection to 127.0.0.1:port in the network namespace at ``netns_path`` (None: this one)."""
    if not netns_path:
        return socket.create_connection(("127.0.0.1", port), timeout=timeout)
    from labkit.oci import syscalls as sc

    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.setns(target, sc.CLONE_NEWNET)
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(timeout)
            try:
                s.connect(("127.0.0.1", port))
            except OSError:
                s.close()
                raise
            return s
        finally:
            sc.setns(own, sc.CLONE_NEWNET)
    finally:
        os.close(own)
        os.close(target)


@dataclass
class _Conn:
    port: int
    error_sid: int | None
    writer: asyncio.StreamWriter | None = None
    pending: list[bytes] = field(default_factory=list)
    client_done: bool = False
    task: asyncio.Task | None = None


class PortForwardSession:
    """One kubectl port-forward (one WebSocket), any number of forwarded connections."""

    def __init__(self, ws: web.WebSocketResponse, connect: Callable[[int], socket.socket], pod: str):
        self.ws, self.connect, self.pod = ws, connect, pod
        self.reader, self.writer = spdy.Reader(), spdy.Writer()
        self.errors: dict[str, int] = {}  # request id -> error stream
        self.conns: dict[int, _Conn] = {}  # data stream -> connection
        self._send_lock = asyncio.Lock()

    async def send(self, data: bytes) -> None:
        async with self._send_lock:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_bytes(data)

    async def run(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type != WSMsgType.BINARY:
                    break
                for frame in self.reader.feed(msg.data):
                    if not await self.handle(frame):
                        return
        finally:
            for conn in self.conns.values():
                if conn.task:
                    conn.task.cancel()
                if conn.writer:
                    conn.writer.close()
            with contextlib.suppress(Exception):
                await self.ws.close()

    async def handle(self, f: spdy.Frame) -> bool:
        if not f.control:
            conn = self.conns.get(f.stream_id)
            if conn is None:
                return True
            if f.payload:
                if conn.writer is None:
                    conn.pending.append(f.payload)
                else:
                    conn.writer.write(f.payload)
                    await conn.writer.drain()
            if f.flags & spdy.FLAG_FIN:
                conn.client_done = True
                if conn.writer is not None and conn.writer.can_write_eof():
                    conn.writer.write_eof()
            return True
        if f.kind == spdy.SYN_STREAM:
            headers = self.reader.headers(f)  # always: the decompressor's state runs across frames
            await self.send(self.writer.syn_reply(f.stream_id))
            kind, rid = headers.get("streamtype"), headers.get("requestid", "")
            if kind == "error":
                self.errors[rid] = f.stream_id
            elif kind == "data":
                try:
                    port = int(headers.get("port", ""))
                except ValueError:
                    await self.send(self.writer.rst(f.stream_id, spdy.RST_INTERNAL_ERROR))
                    return True
                conn = _Conn(port, self.errors.pop(rid, None))
                self.conns[f.stream_id] = conn
                conn.task = asyncio.ensure_future(self.forward(f.stream_id, conn))
        elif f.kind == spdy.PING:
            await self.send(self.writer.ping(f.payload))
        elif f.kind == spdy.RST_STREAM:
            conn = self.conns.pop(f.stream_id, None)
            if conn is not None and conn.writer is not None:
                conn.writer.close()
        elif f.kind == spdy.GOAWAY:
            return False
        return True  # SETTINGS, WINDOW_UPDATE, HEADERS: nothing to do

    async def forward(self, sid: int, conn: _Conn) -> None:
        loop = asyncio.get_running_loop()
        try:
            sock = await loop.run_in_executor(None, self.connect, conn.port)
            sock.setblocking(False)
            reader, writer = await asyncio.open_connection(sock=sock)
        except OSError as exc:
            if conn.error_sid is not None:
                msg = f"error forwarding port {conn.port} to pod {self.pod}: {exc}"
                await self.send(self.writer.data(conn.error_sid, msg.encode(), fin=True))
            await self.send(self.writer.data(sid, b"", fin=True))
            self.conns.pop(sid, None)
            return
        conn.writer = writer
        for chunk in conn.pending:
            writer.write(chunk)
        conn.pending.clear()
        if conn.client_done and writer.can_write_eof():
            writer.write_eof()
        try:
            while data := await reader.read(CHUNK):
                await self.send(self.writer.data(sid, data))
        except OSError:
            pass
        finally:
            await self.send(self.writer.data(sid, b"", fin=True))
            if conn.error_sid is not None:
                await self.send(self.writer.data(conn.error_sid, b"", fin=True))
            writer.close()
            self.conns.pop(sid, None)


def requested_ports(values: list[str]) -> list[int]:
    """``?ports=8080,9090`` or ``?ports=8080&ports=9090``, as the Python client and the API write them."""
    ports = []
    for value in values:
        for part in value.split(","):
            if part.strip():
                port = int(part)
                if not 0 < port < 65536:
                    raise ValueError(f"port {port} is out of range 1-65535")
                ports.append(port)
    if not ports:
        raise ValueError("port-forward needs at least one port (?ports=8080)")
    return ports


class ChannelPortForward:
    """The WebSocket form (``v4.channel.k8s.io``, the Python client's ``portforward()``): one TCP
    connection per port, data on channel 2i and errors on 2i+1, each opened by the port as 2 bytes."""

    def __init__(self, ws: web.WebSocketResponse, connect: Callable[[int], socket.socket], pod: str,
                 ports: list[int]):
        self.ws, self.connect, self.pod, self.ports = ws, connect, pod, ports
        self.writers: dict[int, asyncio.StreamWriter] = {}
        # set once port i's connection in the pod is made (None: it failed); the client may send
        # before that, and its bytes must wait for it rather than be dropped (an HTTP request lost
        # that way left the pod's server waiting 60 s and answering 408)
        self.connected: dict[int, asyncio.Future[asyncio.StreamWriter | None]] = {}
        self._send_lock = asyncio.Lock()

    async def send(self, channel: int, data: bytes) -> None:
        async with self._send_lock:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_bytes(bytes((channel,)) + data)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.connected = {i: loop.create_future() for i in range(len(self.ports))}
        for i, port in enumerate(self.ports):
            await self.send(2 * i, port.to_bytes(2, "little"))
            await self.send(2 * i + 1, port.to_bytes(2, "little"))
        pumps = [asyncio.ensure_future(self.pump(i, port)) for i, port in enumerate(self.ports)]
        reader = asyncio.ensure_future(self.read_client())
        try:
            await asyncio.gather(*pumps)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            for w in self.writers.values():
                w.close()
            with contextlib.suppress(Exception):
                await self.ws.close()

    async def pump(self, i: int, port: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            sock = await loop.run_in_executor(None, self.connect, port)
            sock.setblocking(False)
            reader, writer = await asyncio.open_connection(sock=sock)
        except OSError as exc:
            self.connected[i].set_result(None)
            await self.send(2 * i + 1, f"error forwarding port {port} to pod {self.pod}: {exc}".encode())
            return
        self.writers[i] = writer
        self.connected[i].set_result(writer)
        with contextlib.suppress(OSError):
            while data := await reader.read(CHUNK):
                await self.send(2 * i, data)

    async def read_client(self) -> None:
        async for msg in self.ws:
            if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                break
            raw = msg.data.encode() if isinstance(msg.data, str) else msg.data
            if not raw or raw[0] % 2:
                continue
            ready = self.connected.get(raw[0] // 2)
            writer = await ready if ready is not None else None
            if writer is not None and len(raw) > 1:
                writer.write(raw[1:])
                await writer.drain()
