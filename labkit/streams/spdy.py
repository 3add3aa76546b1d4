"""The part of SPDY/3.1 that ``kubectl port-forward`` needs, written out by hand.

kubectl 1.31+ opens ``pods/portforward`` as a WebSocket with the sub-protocol
``SPDY/3.1+portforward.k8s.io``: the WebSocket's binary messages carry the bytes of a SPDY
connection, in which kubectl opens two streams per TCP connection it forwards (an *error* stream
and a *data* stream, both naming the port and a request id in their headers). No maintained
Python SPDY library exists, so this module frames by hand: 8-byte frame headers, and header
blocks compressed with zlib and SPDY's fixed dictionary (draft-mbelshe-httpbis-spdy-00 §2.6.10.1).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_CANCEL, RST_INTERNAL_ERROR = 5, 6

# the dictionary the header compressors start from: length-prefixed header names and values, then text
_WORDS = ("options head post put delete trace accept accept-charset accept-encoding accept-language "
          "accept-ranges age allow authorization cache-control connection content-base content-encoding "
          "content-language content-length content-location content-md5 content-range content-type date etag "
          "expect expires from host if-match if-modified-since if-none-match if-range if-unmodified-since "
          "last-modified location max-forwards pragma proxy-authenticate proxy-authorization range referer "
          "retry-after server te trailer transfer-encoding upgrade user-agent vary via warning www-authenticate "
          "method get status 200_OK version HTTP/1.1 url public set-cookie keep-alive origin").split()
_TEXT = ("100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
         "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
         "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
         "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
         "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
         "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
         "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.replace("_", " ").encode() for w in _WORDS) + _TEXT.encode()


@dataclass
class Frame:
    control: bool
    kind: int  # the control frame's type; 0 for data
    flags: int
    stream_id: int  # data frames, and the control frames that name a stream
    payload: bytes


class Reader:
    """Bytes in, frames out; keeps the peer's header decompressor (one per connection)."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)

    def feed(self, data: bytes) -> list[Frame]:
        self.buffer += data
        frames = []
        while len(self.buffer) >= 8:
            length = int.from_bytes(self.buffer[5:8], "big")
            if len(self.buffer) < 8 + length:
                break
            head, payload = bytes(self.buffer[:8]), bytes(self.buffer[8:8 + length])
            del self.buffer[:8 + length]
            flags = head[4]
            if head[0] & 0x80:
                kind = int.from_bytes(head[2:4], "big")
                sid = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF if len(payload) >= 4 else 0
                frames.append(Frame(True, kind, flags, sid, payload))
            else:
                frames.append(Frame(False, 0, flags, int.from_bytes(head[:4], "big") & 0x7FFFFFFF, payload))
        return frames

    def headers(self, frame: Frame) -> dict[str, str]:
        """The header block of a SYN_STREAM (after stream id, associated id, priority and slot)."""
        block = frame.payload[10:] if frame.kind == SYN_STREAM else frame.payload[4:]
        raw = self._inflate.decompress(block)
        out, pos = {}, 4
        for _ in range(int.from_bytes(raw[:4], "big")):
            n = int.from_bytes(raw[pos:pos + 4], "big")
            name = raw[pos + 4:pos + 4 + n].decode()
            pos += 4 + n
            n = int.from_bytes(raw[pos:pos + 4], "big")
            out[name.lower()] = raw[pos + 4:pos + 4 + n].split(b"\0")[0].decode()
            pos += 4 + n
        return out


class Writer:
    """Frames out, with this side's header compressor."""

    def __init__(self) -> None:
        self._deflate = zlib.compressobj(zdict=DICTIONARY)

    @staticmethod
    def control(kind: int, flags: int, payload: bytes) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload

    @staticmethod
    def data(stream_id: int, data: bytes, fin: bool = False) -> bytes:
        return struct.pack(">II", stream_id & 0x7FFFFFFF, ((FLAG_FIN if fin else 0) << 24) | len(data)) + data

    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None, fin: bool = False) -> bytes:
        pairs = list((headers or {}).items())
        raw = struct.pack(">I", len(pairs)) + b"".join(
            struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode() for k, v in pairs)
        block = self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        return self.control(SYN_REPLY, FLAG_FIN if fin else 0, struct.pack(">I", stream_id) + block)

    def rst(self, stream_id: int, status: int = RST_CANCEL) -> bytes:
        return self.control(RST_STREAM, 0, struct.pack(">II", stream_id, status))

    def ping(self, payload: bytes) -> bytes:
        return self.control(PING, 0, payload[:4])

    def goaway(self, last_stream: int) -> bytes:
        return self.control(GOAWAY, 0, struct.pack(">II", last_stream, 0))
