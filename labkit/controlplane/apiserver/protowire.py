"""The protobuf wire format, by hand: enough to read kubectl's protobuf bodies and to write the
small protobuf OpenAPI v2 document older kubectl versions insist on.

Wire types used by Kubernetes: 0 (varint: ints, bools, enums), 2 (length-delimited: strings,
bytes, nested messages, packed lists) and, rarely, 1/5 (fixed 64/32-bit).
"""

from __future__ import annotations

from collections.abc import Iterator


class WireError(ValueError):
    """Malformed protobuf bytes."""
    pass


def varint(n: int) -> bytes:
    """Encode an unsigned (or two's-complement negative) varint."""
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_bytes(num: int, data: bytes) -> bytes:
    """A length-delimited field (strings, bytes, nested messages)."""
    return varint(num << 3 | 2) + varint(len(data)) + data


def field_str(num: int, text: str) -> bytes:
    """A string field."""
    return field_bytes(num, text.encode())


def field_varint(num: int, value: int) -> bytes:
    """A varint field (ints, bools)."""
    return varint(num << 3) + varint(value)


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Read a varint at pos; return (value, next position)."""
    shift = result = 0
    while True:
        if pos >= len(buf):
            raise WireError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise WireError("varint too long")


def fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value) for every field of one message."""
    pos = 0
    n = len(buf)
    while pos < n:
        key, pos = read_varint(buf, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, pos = read_varint(buf, pos)
            yield num, wt, val
        elif wt == 2:
            ln, pos = read_varint(buf, pos)
            if pos + ln > n:
                raise WireError("truncated length-delimited field")
            yield num, wt, buf[pos:pos + ln]
            pos += ln
        elif wt == 1:
            yield num, wt, int.from_bytes(buf[pos:pos + 8], "little")
            pos += 8
        elif wt == 5:
            yield num, wt, int.from_bytes(buf[pos:pos + 4], "little")
            pos += 4
        else:
            raise WireError(f"unsupported wire type {wt}")
