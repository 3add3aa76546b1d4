"""The channel protocols and the SPDY framing of the streaming subresources, without a cluster.

The runtime's streaming server runs a host ``sh`` here (what the simulated runtime does), so these
run on any Linux machine in well under a second.
"""

from __future__ import annotations

import asyncio
import json
import struct
import zlib

import aiohttp
from support.streams import converse

from labkit.runtime import streaming
from labkit.streams import spdy


def exec_url(script: str, *, stdin: bool = False, tty: bool = False) -> str:
    cmd = ["sh", "-c", script]
    return streaming.shared().exec_url(lambda i, o, e, t: streaming.popen(cmd, i, o, e, t), cmd,
                                       tty=tty, stdin=stdin)


def test_v5_stdin_to_its_end_then_the_exit_code():
    url = exec_url("tr a-z A-Z; echo bye >&2; exit 3", stdin=True)
    protocol, got = asyncio.run(converse(url, "v5.channel.k8s.io", [b"\x00hello\n", b"\xff\x00"]))
    assert protocol == "v5.channel.k8s.io"
    assert got[1] == b"HELLO\n" and got[2] == b"bye\n"
    status = json.loads(got[3])
    assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]


def test_v4_success_is_a_plain_success_status():
    _, got = asyncio.run(converse(exec_url("echo ok"), "v4.channel.k8s.io", []))
    assert got[1] == b"ok\n"
    assert json.loads(got[3]) == {"metadata": {}, "status": "Success"}


def test_tty_mode_gives_the_command_a_terminal_of_the_size_asked():
    url = exec_url("sleep 0.3; test -t 0 && stty size", tty=True)
    _, got = asyncio.run(converse(url, "v5.channel.k8s.io", [b"\x04" + b'{"Width":91,"Height":27}']))
    assert b"27 91" in got[1]
    assert 2 not in got  # a terminal has one output stream


def test_a_url_serves_once():
    url = exec_url("true")
    asyncio.run(converse(url, "v5.channel.k8s.io", []))

    async def again() -> int:
        async with aiohttp.ClientSession() as s, s.get(url) as r:
            return r.status
    assert asyncio.run(again()) == 404


def test_spdy_dictionary_is_the_one_of_the_spec():
    # kubectl's zlib streams name the dictionary by its Adler-32; any other byte and inflating fails
    assert len(spdy.DICTIONARY) == 1423
    assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2


def test_spdy_headers_as_kubectl_sends_them_and_our_reply():
    # a SYN_STREAM as a Go client writes it: stream 1, no associated stream, headers zlib'd with the dictionary
    pairs = [("streamtype", "data"), ("port", "8080"), ("requestid", "0")]
    raw = struct.pack(">I", len(pairs)) + b"".join(
        struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode() for k, v in pairs)
    z = zlib.compressobj(zdict=spdy.DICTIONARY)
    block = z.compress(raw) + z.flush(zlib.Z_SYNC_FLUSH)
    frame = spdy.Writer.control(spdy.SYN_STREAM, 0, struct.pack(">IIH", 1, 0, 0) + block)
    reader = spdy.Reader()
    frames = reader.feed(frame[:5]) + reader.feed(frame[5:] + spdy.Writer.data(1, b"GET /", fin=True))
    assert [f.kind for f in frames] == [spdy.SYN_STREAM, 0]
    assert reader.headers(frames[0]) == dict(pairs)
    assert frames[1].payload == b"GET /" and frames[1].flags & spdy.FLAG_FIN
    reply = spdy.Reader().feed(spdy.Writer().syn_reply(1))[0]
    assert reply.control and reply.kind == spdy.SYN_REPLY and reply.stream_id == 1
