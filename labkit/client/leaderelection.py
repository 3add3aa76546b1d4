"""Leader election through a coordination.k8s.io Lease, as kube-scheduler and kube-controller-manager do it.

Run two copies of a component for availability and only one acts: the one holding the Lease.
The holder renews ``spec.renewTime`` every few seconds; the others wait until the lease has not
been renewed for ``leaseDurationSeconds`` and then take it over with a compare-and-swap update
(the Lease's resourceVersion), so two candidates can never both win.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import sys
import uuid
from collections.abc import Awaitable, Callable

from labkit.client.events import now_micro
from labkit.client.kubeconfig import KubeConfigError
from labkit.client.rest import ApiError, Client

log = logging.getLogger(__name__)


class LeadershipLost(Exception):
    """The lease was taken over or could not be renewed in time; the component should stop."""


def _parse(ts: str | None) -> float:
    if not ts:
        return 0.0
    try:
        return dt.datetime.strptime(ts.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
    except ValueError:
        try:
            return dt.datetime.strptime(ts.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S%z").timestamp()
        except ValueError:
            return 0.0


class LeaderElector:
    def __init__(self, client: Client, name: str, namespace: str = "kube-system", identity: str | None = None,
                 lease_duration: float = 15.0, renew_every: float = 2.0, retry_every: float = 1.0):
        self.client = client
        self.name = name
        self.namespace = namespace
        self.identity = identity or f"{socket.gethostname()}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.lease_duration = lease_duration
        self.renew_every = renew_every
        self.retry_every = retry_every
        self.is_leader = False

    def _spec(self, old: dict | None) -> dict:
        now = now_micro()
        spec = dict((old or {}).get("spec") or {})
        taking_over = spec.get("holderIdentity") != self.identity
        spec.update({"holderIdentity": self.identity, "leaseDurationSeconds": int(self.lease_duration),
                     "renewTime": now})
        if taking_over:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions", 0)) + (1 if old else 0)
        return spec

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this candidate holds the lease afterwards."""
        try:
            lease = await self.client.get("leases", self.name, self.namespace)
        except ApiError as exc:
            if not exc.not_found:
                raise
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace}, "spec": self._spec(None)}
            try:
                await self.client.create("leases", body, namespace=self.namespace)
                return True
            except ApiError as exc2:
                if exc2.code == 409:
                    return False
                raise
        spec = lease.get("spec") or {}
        held_by_other = spec.get("holderIdentity") not in (None, "", self.identity)
        expires = _parse(spec.get("renewTime")) + float(spec.get("leaseDurationSeconds") or self.lease_duration)
        if held_by_other and expires > dt.datetime.now(dt.UTC).timestamp():
            return False
        lease["spec"] = self._spec(lease)
        try:
            await self.client.update("leases", lease)  # resourceVersion makes this a compare-and-swap
            return True
        except ApiError as exc:
            if exc.code == 409:
                return False
            raise

    async def acquire(self) -> None:
        while True:
            try:
                if await self.try_acquire_or_renew():
                    self.is_leader = True
                    log.info("%s: became leader of %s/%s", self.identity, self.namespace, self.name)
                    return
            except ApiError as exc:
                log.info("leader election: %s", exc)
            await asyncio.sleep(self.retry_every)

    async def keep(self) -> None:
        """Renew until it fails for a whole lease duration (then raise LeadershipLost)."""
        last_ok = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(self.renew_every)
            try:
                ok = await self.try_acquire_or_renew()
            except ApiError:
                ok = False
            now = asyncio.get_running_loop().time()
            if ok:
                last_ok = now
            elif now - last_ok > self.lease_duration * 2 / 3:
                self.is_leader = False
                raise LeadershipLost(f"{self.identity} lost the lease {self.namespace}/{self.name}")

    async def run(self, work: Callable[[], Awaitable[None]]) -> None:
        """Wait to lead, then run ``work()`` while leading; raise LeadershipLost if the lease goes."""
        await self.acquire()
        task = asyncio.create_task(work())
        keeper = asyncio.create_task(self.keep())
        try:
            done, _ = await asyncio.wait({task, keeper}, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                t.result()
        finally:
            for t in (task, keeper):
                t.cancel()
            await asyncio.gather(task, keeper, return_exceptions=True)


def run_component(kubeconfig: str | None, user_agent: str, lease_name: str, leader_elect: bool,
                  work: Callable[[Client], Awaitable[None]]) -> None:
    """The main loop of a control-plane component (scheduler, controller-manager).

    Connects with the kubeconfig, runs ``work(client)`` (only while holding the Lease when
    ``leader_elect``), and turns the ways it can end into a one-line error and an exit code:
    1 when leadership was lost (so a supervisor restarts it to compete again), 2 for a bad kubeconfig.
    """
    async def main() -> None:
        client = Client(kubeconfig, user_agent=user_agent)
        try:
            if leader_elect:
                await LeaderElector(client, lease_name).run(lambda: work(client))
            else:
                await work(client)
        finally:
            await client.close()

    try:
        asyncio.run(main())
    except LeadershipLost as exc:
        print(f"error: {exc}; exiting so a restart can compete again", file=sys.stderr)
        sys.exit(1)
    except KubeConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        pass
