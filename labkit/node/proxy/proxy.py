"""A kube-proxy: watch Services and Endpoints through the apiserver, program each node's iptables.

Like the real one it is an ordinary API client: it never talks to the scheduler or the
kubelets, only watches ``services`` and ``endpoints`` and rewrites the rules whenever either
changes. One process can serve several labkit nodes (one network namespace each).

    python -m labkit.node.proxy --kubeconfig KC --netns /run/netns/labkit-node-n1 [--netns ...]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import threading

from labkit.client import Client, KubeConfig
from labkit.client.informer import Informer
from labkit.node.proxy import rules

log = logging.getLogger(__name__)


class KubeProxy:
    """Keeps every given namespace's service rules equal to what the apiserver says."""

    def __init__(self, kubeconfig: KubeConfig | str | None, netns: list[str]):
        self.kubeconfig = kubeconfig
        self.netns = list(netns)
        self.syncs = 0
        self.last_ports: list[rules.ServicePort] = []
        self.last_error: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task | None = None
        self._dirty: asyncio.Event | None = None

    def sync_once(self, services: list[dict], endpoints: list[dict]) -> list[rules.ServicePort]:
        """Compute and apply the rules for this state; returns the forwarding table it applied."""
        ports = rules.service_ports(services, endpoints)
        for ns in self.netns:
            rules.apply(ns, ports)
        self.last_ports = ports
        self.syncs += 1
        return ports

    async def run(self) -> None:
        """Informers for services and endpoints; any change marks the rules dirty; one syncer applies."""
        self._dirty = asyncio.Event()
        async with Client(self.kubeconfig, user_agent="labkit-proxy") as client:
            svcs, eps = Informer(client, "services"), Informer(client, "endpoints")
            for inf in (svcs, eps):
                inf.add_handler(lambda *_: self._dirty.set(), lambda *_: self._dirty.set(), lambda *_: self._dirty.set())
            tasks = [asyncio.create_task(svcs.run()), asyncio.create_task(eps.run())]
            try:
                await svcs.wait_synced()
                await eps.wait_synced()
                self._dirty.set()
                while True:
                    await self._dirty.wait()
                    self._dirty.clear()
                    try:
                        await asyncio.to_thread(self.sync_once, svcs.list(), eps.list())
                        self.last_error = None
                    except RuntimeError as exc:
                        self.last_error = str(exc)
                        log.warning("proxy sync failed: %s", exc)
                    await asyncio.sleep(0.05)  # coalesce bursts of changes into one rewrite
            finally:
                for t in tasks:
                    t.cancel()

    # --- run in a background thread (kubelet / notebook) ---------------
    def start(self) -> KubeProxy:
        self._loop = asyncio.new_event_loop()

        def _main() -> None:
            asyncio.set_event_loop(self._loop)
            self._task = self._loop.create_task(self.run())
            try:
                self._loop.run_until_complete(self._task)
            except asyncio.CancelledError:
                pass
            except Exception as exc:  # surfaced through last_error
                self.last_error = f"{type(exc).__name__}: {exc}"
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=_main, name="labkit-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._loop and self._task and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._task.cancel)
        if self._thread:
            self._thread.join(timeout=5)
        for ns in self.netns:
            rules.remove(ns)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m labkit.node.proxy", description=__doc__.splitlines()[0])
    ap.add_argument("--kubeconfig", default=None)
    ap.add_argument("--netns", action="append", required=True, help="network namespace path (repeatable)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    proxy = KubeProxy(a.kubeconfig, a.netns)
    try:
        asyncio.run(proxy.run())
    except KeyboardInterrupt:
        pass
    finally:
        for ns in proxy.netns:
            rules.remove(ns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
