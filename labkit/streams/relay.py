"""Relay one WebSocket to another, message by message: how the apiserver hands ``pods/exec`` to a
kubelet, and the kubelet to its runtime's streaming server, without reading what goes through."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType, web

#: no limit on one message: ``kubectl cp`` sends whole tar blocks
MAX_MESSAGE = 0


async def connect(session: ClientSession, url: str, protocol: str) -> ClientWebSocketResponse:
    """Open the next hop with the sub-protocol the client chose."""
    return await session.ws_connect(url, protocols=(protocol,), max_msg_size=MAX_MESSAGE, autoclose=False,
                                    heartbeat=None)


async def relay(client: web.WebSocketResponse, upstream: ClientWebSocketResponse) -> None:
    """Copy messages both ways until either side closes; then close the other one."""

    async def down() -> None:  # upstream -> client
        async for msg in upstream:
            if msg.type == WSMsgType.BINARY:
                await client.send_bytes(msg.data)
            elif msg.type == WSMsgType.TEXT:
                await client.send_str(msg.data)
            else:
                break

    async def up() -> None:  # client -> upstream
        async for msg in client:
            if msg.type == WSMsgType.BINARY:
                await upstream.send_bytes(msg.data)
            elif msg.type == WSMsgType.TEXT:
                await upstream.send_str(msg.data)
            else:
                break

    tasks = [asyncio.ensure_future(down()), asyncio.ensure_future(up())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if tasks[1] in done and not tasks[0].done():
            # the client went away first (or closed): let the command's end still reach it if it can
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(tasks[0]), 1.0)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        with contextlib.suppress(Exception):
            await upstream.close()
        with contextlib.suppress(Exception):
            await client.close()
