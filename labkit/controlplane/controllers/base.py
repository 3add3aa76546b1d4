"""What every controller shares: a work queue of object keys and shared informers.

A controller never acts on an event directly. Handlers put the key of the affected object on
a queue; a worker takes keys off and *reconciles*: read the desired state from the cache,
compare with what exists, make one step of change through the API. A key is queued at most
once, and a failed sync is retried later, so events can be lost or repeated and the end state
is still right — which is why killing the controller-manager and starting it again loses
nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time

from labkit.client import Client
from labkit.client.events import EventRecorder
from labkit.client.informer import Informer
from labkit.client.rest import ApiError

log = logging.getLogger(__name__)


class WorkQueue:
    """Deduplicating queue: a key waiting once is never waiting twice; retries wait a little."""

    def __init__(self) -> None:
        self._q: asyncio.Queue[str] = asyncio.Queue()
        self._waiting: set[str] = set()
        self._processing: set[str] = set()
        self._dirty: set[str] = set()
        self._failures: dict[str, int] = {}
        self.adds = 0  # for workqueue_adds_total
        self.retries = 0  # for workqueue_retries_total

    def add(self, key: str) -> None:
        self.adds += 1
        if key in self._processing:
            self._dirty.add(key)  # re-run after the current sync finishes
            return
        if key not in self._waiting:
            self._waiting.add(key)
            self._q.put_nowait(key)

    def add_after(self, key: str, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self.add, key)

    def retry(self, key: str) -> None:
        n = self._failures.get(key, 0) + 1
        self._failures[key] = n
        self.retries += 1
        self.add_after(key, min(0.05 * 2**n, 10.0))

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    async def get(self) -> str:
        key = await self._q.get()
        self._waiting.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def __len__(self) -> int:
        return len(self._waiting)


class SharedInformers:
    """One informer per resource (and namespace) for the whole process, like client-go's factory."""

    def __init__(self, client: Client):
        self.client = client
        self._informers: dict[tuple[str, str | None], Informer] = {}
        self._tasks: list[asyncio.Task] = []

    def get(self, resource: str, namespace: str | None = None) -> Informer:
        k = (resource, namespace)
        if k not in self._informers:
            self._informers[k] = Informer(self.client, resource, namespace)
        return self._informers[k]

    async def start(self, timeout: float = 60.0) -> None:
        for inf in self._informers.values():
            self._tasks.append(asyncio.create_task(inf.run()))
        for inf in self._informers.values():
            await inf.wait_synced(timeout)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class Controller:
    """Subclasses set ``name``, register handlers in ``__init__`` and implement ``sync(key)``."""

    name = "controller"
    workers = 2

    def __init__(self, client: Client, informers: SharedInformers, recorder: EventRecorder | None = None):
        self.client = client
        self.informers = informers
        self.queue = WorkQueue()
        self.recorder = recorder or EventRecorder(client, self.name)
        self.syncs = 0

    async def sync(self, key: str) -> None:
        raise NotImplementedError

    async def run(self) -> None:
        await asyncio.gather(*(self._worker() for _ in range(self.workers)))

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            t0 = time.perf_counter()
            try:
                await self.sync(key)
                self.queue.forget(key)
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                level = logging.DEBUG if exc.code in (404, 409) else logging.INFO
                log.log(level, "%s: sync %s: %s (retrying)", self.name, key, exc)
                self.queue.retry(key)
            except Exception:
                log.exception("%s: sync %s failed (retrying)", self.name, key)
                self.queue.retry(key)
            finally:
                self.syncs += 1
                self.queue.done(key)
                log.debug("%s: synced %s in %.1f ms", self.name, key, (time.perf_counter() - t0) * 1000)


class OwnsPods:
    """What a controller that creates pods does when a pod appears: find the owner through the
    pod's controller reference, count the create it expected, and look at that owner again
    (ReplicaSet, Job and DaemonSet controllers, as their Kubernetes counterparts share it).

    The subclass names its kind in ``OWNER_KIND`` and has ``expectations`` and ``queue``."""

    OWNER_KIND = ""

    def _owner_key(self, pod: dict) -> str | None:
        ref = controller_of(pod)
        if ref and ref.get("kind") == self.OWNER_KIND:
            return f"{pod['metadata'].get('namespace', 'default')}/{ref['name']}"
        return None

    def _pod_added(self, pod: dict) -> None:
        k = self._owner_key(pod)
        if k:
            self.expectations.observed(k, adds=1)  # type: ignore[attr-defined]
            self.queue.add(k)  # type: ignore[attr-defined]


def split_key(key: str) -> tuple[str | None, str]:
    ns, _, name = key.rpartition("/")
    return (ns or None), name


def controller_of(obj: dict) -> dict | None:
    """The ownerReference with controller=true, if any."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def owner_ref(owner: dict, block: bool = True) -> dict:
    md = owner["metadata"]
    return {"apiVersion": owner.get("apiVersion", ""), "kind": owner.get("kind", ""), "name": md["name"],
            "uid": md["uid"], "controller": True, "blockOwnerDeletion": block}
