"""An ``apiserver-overload`` fault: many clients hammer the apiserver at once for a while.

:func:`burst` is what a chaos tool calls (``labkit chaos apiserver-overload`` is to wrap it). The
clients do not back off on a 429 unless asked to: a burst is hostile on purpose. What comes back says how the
server held: answers by status code, how many 429s lacked a ``Retry-After``, throughput and
latency percentiles. The fault undoes itself: when ``seconds`` are up the clients stop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp


@dataclass
class BurstResult:
    """What the server answered during one burst."""

    clients: int
    seconds: float
    codes: Counter = field(default_factory=Counter)  # HTTP status -> count
    failures: int = 0  # requests that got no answer (refused, reset, timed out)
    no_retry_after: int = 0  # 429 answers without a Retry-After header (kube-apiserver always sends one)
    latencies: dict[int, list[float]] = field(default_factory=dict)  # status -> seconds per answer

    @property
    def sent(self) -> int:
        return sum(self.codes.values()) + self.failures

    def throughput(self, code: int = 200) -> float:
        """Answers with ``code`` per second of the burst."""
        return self.codes.get(code, 0) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float, code: int | None = 200) -> float:
        """The q-th percentile (0-100) of answer latency in seconds, for one status or all (None)."""
        values = sorted(v for c, vs in self.latencies.items() if code is None or c == code for v in vs)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(len(values) * q / 100))]

    def counts(self) -> dict:
        """Plain numbers, for printing or JSON."""
        return {"clients": self.clients, "seconds": round(self.seconds, 2), "sent": self.sent,
                "codes": dict(sorted(self.codes.items())), "failures": self.failures,
                "no_retry_after": self.no_retry_after}


async def burst_async(url: str, clients: int = 200, seconds: float = 5.0, path: str = "/api/v1/namespaces",
                      method: str = "GET", body: bytes | None = None, timeout: float = 10.0,
                      honor_retry_after: bool = False) -> BurstResult:
    """Run the burst on the current event loop (see :func:`burst`)."""
    result = BurstResult(clients=clients, seconds=seconds)
    deadline = time.monotonic() + seconds
    headers = {"Content-Type": "application/json"} if body is not None else {}

    async def client(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            start = time.monotonic()
            try:
                async with session.request(method, url + path, data=body, headers=headers) as resp:
                    await resp.read()
                    code = resp.status
                    retry_after = resp.headers.get("Retry-After", "")
                    if code == 429 and not retry_after:
                        result.no_retry_after += 1
                    if not retry_after.isdigit():
                        retry_after = ""
            except (TimeoutError, aiohttp.ClientError, OSError):
                result.failures += 1
                continue
            result.codes[code] += 1
            result.latencies.setdefault(code, []).append(time.monotonic() - start)
            if code == 429 and honor_retry_after:  # what client-go does: wait as told, then try again
                await asyncio.sleep(min(float(retry_after or 1), max(0.0, deadline - time.monotonic())))

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        started = time.monotonic()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        result.seconds = time.monotonic() - started
    return result


def burst(url: str, clients: int = 200, seconds: float = 5.0, path: str = "/api/v1/namespaces",
          method: str = "GET", body: bytes | None = None, timeout: float = 10.0,
          honor_retry_after: bool = False) -> BurstResult:
    """``clients`` concurrent clients send ``method path`` to the apiserver at ``url`` for ``seconds``.

    Hostile by default: a 429 is answered with the next request at once. With ``honor_retry_after``
    the clients wait as the server asks, as client-go does. Callable from plain code and from a
    notebook (whose event loop is already running: the burst then runs on a thread of its own).
    """
    run = lambda: asyncio.run(burst_async(url, clients, seconds, path, method, body, timeout,  # noqa: E731
                                          honor_retry_after))
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()
