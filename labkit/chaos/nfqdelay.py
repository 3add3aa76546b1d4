"""Hold packets back for a while without netem: an NFQUEUE listener that accepts each one late.

    ip netns exec NS python -m labkit.chaos.nfqdelay --queue 7 --delay-ms 200

Where the kernel has no ``sch_netem``, ``network-delay`` sends the pod's incoming packets to an
NFQUEUE (an iptables target that hands packets to a program) and starts this listener in the pod's
namespace. It speaks the nfnetlink_queue protocol over a netlink socket with the standard library
alone: bind to the queue, ask for the packets' metadata only, and give each packet its ACCEPT
verdict ``delay`` after it arrived. The rule uses ``--queue-bypass``, so with no listener (this
one ended or was killed) packets pass as if the rule were not there.
"""

from __future__ import annotations

import argparse
import heapq
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS = 1, 2
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NF_ACCEPT = 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2


def _attr(kind: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def _message(msg: int, queue: int, attrs: bytes, family: int = socket.AF_INET, flags: int = NLM_F_REQUEST) -> bytes:
    body = struct.pack("=BBH", family, 0, socket.htons(queue)) + attrs
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg, flags, 0, 0) + body


def _config(sock: socket.socket, queue: int, attrs: bytes) -> None:
    sock.send(_message(NFQNL_MSG_CONFIG, queue, attrs, flags=NLM_F_REQUEST | NLM_F_ACK))
    reply = sock.recv(65536)
    kind = struct.unpack_from("=H", reply, 4)[0]
    if kind == NLMSG_ERROR:
        err = struct.unpack_from("=i", reply, 16)[0]
        if err:
            raise OSError(-err, f"nfnetlink_queue refused the configuration of queue {queue}")


def open_queue(queue: int) -> socket.socket:
    """A netlink socket bound to NFQUEUE ``queue``, receiving packet ids only (no payload)."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.bind((0, 0))
    _config(sock, queue, _attr(NFQA_CFG_CMD, struct.pack("=BBH", NFQNL_CFG_CMD_BIND, 0, socket.htons(socket.AF_INET))))
    _config(sock, queue, _attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META)))
    return sock


def _packet_ids(data: bytes) -> list[int]:
    ids, off = [], 0
    while off + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, off)
        if length < 16:
            break
        if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            a = off + 20  # past nlmsghdr (16) and nfgenmsg (4)
            while a + 4 <= off + length:
                alen, akind = struct.unpack_from("=HH", data, a)
                if alen < 4:
                    break
                if akind & 0x7FFF == NFQA_PACKET_HDR:
                    ids.append(struct.unpack_from("!I", data, a + 4)[0])
                a += (alen + 3) & ~3
        off += (length + 3) & ~3
    return ids


def _accept(sock: socket.socket, queue: int, packet_id: int) -> None:
    verdict = _attr(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, packet_id))
    sock.send(_message(NFQNL_MSG_VERDICT, queue, verdict, family=socket.AF_UNSPEC))


def serve(queue: int, delay: float) -> None:
    """Accept every packet of ``queue`` ``delay`` seconds after it arrived, until SIGTERM."""
    sock = open_queue(queue)
    print("ready", flush=True)
    due: list[tuple[float, int]] = []
    stop = False

    def end(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, end)
    while not stop:
        wait = max(0.0, due[0][0] - time.monotonic()) if due else 0.5
        ready, _, _ = select.select([sock], [], [], wait)
        if ready:
            now = time.monotonic()
            for pid in _packet_ids(sock.recv(1 << 20)):
                heapq.heappush(due, (now + delay, pid))
        now = time.monotonic()
        while due and due[0][0] <= now:
            _accept(sock, queue, heapq.heappop(due)[1])
    for _, pid in due:  # let the held packets go rather than lose them
        _accept(sock, queue, pid)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queue", type=int, required=True)
    ap.add_argument("--delay-ms", type=float, required=True)
    a = ap.parse_args(argv)
    try:
        serve(a.queue, a.delay_ms / 1000)
    except OSError as exc:
        print(f"nfqdelay: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
