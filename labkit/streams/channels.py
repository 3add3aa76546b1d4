"""The channel protocols of Kubernetes' streaming subresources, as bytes on a WebSocket."""

from __future__ import annotations

import json
import shlex

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
#: what this server speaks, best first (kubectl 1.30+ offers v5 then v4; the Python client asks v4)
PROTOCOLS = (V5, V4)

#: one line for a client that asked for SPDY (kubectl 1.29 and older)
SPDY_REFUSED = ("labkit serves exec, attach and cp over WebSocket (v5.channel.k8s.io, v4.channel.k8s.io) only, "
                "not SPDY: use kubectl 1.30 or newer")
#: kubectl 1.31+ tunnels port-forward's SPDY inside a WebSocket with this sub-protocol
PORTFORWARD = "SPDY/3.1+portforward.k8s.io"
#: pods/portforward: kubectl's tunnelled SPDY, or channels per port (the Python client's ``portforward()``)
PORTFORWARD_PROTOCOLS = (PORTFORWARD, V4)
PORTFORWARD_SPDY_REFUSED = ("labkit serves port-forward over WebSocket (SPDY/3.1+portforward.k8s.io) only, not "
                            "plain SPDY: use kubectl 1.31 or newer (1.30: set KUBECTL_PORT_FORWARD_WEBSOCKETS=true)")


def frame(channel: int, data: bytes) -> bytes:
    """One message: the channel byte, then the data."""
    return bytes((channel,)) + data


def split(message: bytes | str) -> tuple[int, bytes]:
    """A message from a client as (channel, data); the Python client sends text frames for str data."""
    raw = message.encode() if isinstance(message, str) else message
    if not raw:
        return -1, b""
    return raw[0], raw[1:]


def exit_status(code: int, command: list[str]) -> bytes:
    """What the error channel carries at the end: Success, or the exit code in ``details.causes``."""
    if code == 0:
        return json.dumps({"metadata": {}, "status": "Success"}).encode()
    return json.dumps({
        "metadata": {}, "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command "
                   f"[{shlex.join(command)}], exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }).encode()


def failure_status(message: str) -> bytes:
    """An error that stops the stream before a command ran (no such binary, the container stopped)."""
    return json.dumps({"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError",
                       "code": 500}).encode()


def resize(data: bytes) -> tuple[int, int] | None:
    """A resize message, ``{"Width": W, "Height": H}``, as (columns, rows)."""
    try:
        size = json.loads(data)
        return int(size.get("Width", 0)), int(size.get("Height", 0))
    except (ValueError, TypeError, AttributeError):
        return None
