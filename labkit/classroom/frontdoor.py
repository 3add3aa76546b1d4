"""The class's front door: the API server's TLS port, offered on the room's network address.

The apiserver itself listens on 127.0.0.1 (where the teacher's tools and the local components
reach it); students' machines and joining nodes connect to ``--address`` instead, and this relays
their bytes untouched to the loopback port. TLS runs end to end (the serving certificate names the
address; client certificates still reach the apiserver), so the relay sees nothing it could change.
"""

from __future__ import annotations

import asyncio
import contextlib


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def open_front_door(address: str, port: int, target_port: int) -> asyncio.base_events.Server:
    """Listen on ``address:port`` and relay every connection to ``127.0.0.1:target_port``."""

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    return await asyncio.start_server(relay, address, port)
