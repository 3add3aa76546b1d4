"""labkit's :class:`~labkit.client.rest.Client` for code that runs on plain threads.

The kubelet's plug-in hooks (CNI, CSI) are synchronous and run on its worker threads, yet read
a few API objects (a Node's podCIDR, a claim and its volume). They use the same asynchronous
client as every component, driven by a private event loop on one background thread that starts
on the first request.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from labkit.client.kubeconfig import KubeConfig
from labkit.client.rest import ApiError, Client


class BlockingClient:
    """``get`` (and any other :class:`Client` verb through :meth:`call`) as a plain blocking call."""

    def __init__(self, config: KubeConfig | str | None = None, *, user_agent: str = "labkit", timeout: float = 10.0):
        self.config = config if isinstance(config, KubeConfig) else KubeConfig.load(config)
        self.user_agent = user_agent
        self.timeout = timeout
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Client | None = None

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="labkit-blocking-client", daemon=True).start()

                async def make() -> Client:
                    return Client(self.config, user_agent=self.user_agent)

                self._client = asyncio.run_coroutine_threadsafe(make(), loop).result()
                self._loop = loop
            return self._loop

    def call(self, verb: str, *args: Any, **kw: Any) -> Any:
        """``Client.<verb>(*args, **kw)``, waited for; raises :class:`~labkit.client.rest.ApiError` as it does."""
        loop = self._start()
        fut = asyncio.run_coroutine_threadsafe(getattr(self._client, verb)(*args, **kw), loop)
        try:
            return fut.result(self.timeout)
        except TimeoutError:
            fut.cancel()
            raise ApiError(504, "Timeout", f"no answer from {self.config.server} in {self.timeout:.0f}s") from None

    def get(self, resource: str, name: str, namespace: str | None = None) -> dict:
        return self.call("get", resource, name, namespace)

    def close(self) -> None:
        with self._lock:
            loop, client, self._loop, self._client = self._loop, self._client, None, None
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(client.close(), loop).result(5)
        finally:
            loop.call_soon_threadsafe(loop.stop)
