"""An object-level backup in the manner of Velero: chosen namespaces to a tar.gz of JSON files.

A store snapshot restores one cluster exactly as it was; an object backup is for moving or
rebuilding *parts* of a cluster, possibly into another one. So it keeps what a user wrote and
drops what the old cluster made up:

* ``status``, ``uid``, ``resourceVersion``, ``creationTimestamp``, ``generation`` and
  ``managedFields`` are dropped: the new cluster assigns its own.
* ``ownerReferences`` name their owner by UID, and UIDs change, so owners are created first and
  every reference is rewired to the owner's new UID (a reference to an owner that is not in the
  archive is dropped, as a garbage collector would otherwise delete the object at once).
* A Service keeps its ClusterIP when that address is free in the new cluster, and gets a newly
  allocated one when it is taken (the new cluster's apiserver says so with a 422). Headless
  Services stay headless.
* A Pod loses ``spec.nodeName`` (the other cluster's nodes differ: the scheduler places it), and a
  PersistentVolumeClaim its ``volumeName`` (it binds to a new volume; data comes back through a
  CSI snapshot, not through this archive).

The layout follows Velero's: ``resources/<resource>/namespaces/<ns>/<name>.json``, cluster-scoped
objects under ``resources/<resource>/cluster/``, and ``metadata.json`` with what was taken.
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
import os
import tarfile
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from labkit.client import ApiError, Client
from labkit.client.kubeconfig import KubeConfig
from labkit.client.resources import Resource, resource

T = TypeVar("T")

#: What a backup takes, in restore order: owners before what they own (Velero's priorities, in short).
RESTORE_ORDER = ("namespaces", "serviceaccounts", "secrets", "configmaps", "limitranges", "resourcequotas",
                 "persistentvolumeclaims", "services", "cronjobs", "jobs", "deployments", "statefulsets",
                 "daemonsets", "replicasets", "pods", "ingresses", "volumesnapshots")
#: Made by controllers from the objects above, so not backed up (Velero leaves them out too).
LEFT_OUT = ("events", "endpoints", "endpointslices", "leases")
DROPPED_METADATA = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink",
                    "deletionTimestamp", "deletionGracePeriodSeconds")
CONCURRENCY = 32


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to the end from plain code, also where an event loop already runs (a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    t = threading.Thread(target=target, name="labkit-backup")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


@dataclass
class ArchiveSummary:
    """What a backup took or a restore made: objects per resource, and what was changed on the way."""
    path: Path
    namespaces: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # rewired owners, reallocated IPs, skipped objects
    uid_map: dict[str, str] = field(default_factory=dict)  # old UID -> new UID (restores)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __str__(self) -> str:
        parts = ", ".join(f"{n} {r}" for r, n in self.counts.items() if n)
        return f"{self.total} objects ({parts}) in {self.seconds:.2f} s"


def _entry(r: Resource, obj: dict) -> str:
    md = obj["metadata"]
    where = f"namespaces/{md['namespace']}" if r.namespaced else "cluster"
    return f"resources/{r.plural}/{where}/{md['name']}.json"


def clean(obj: dict, r: Resource) -> dict:
    """The object as a user would write it again: no status, no identity the old cluster gave it."""
    out = copy.deepcopy(obj)
    out.pop("status", None)
    out["apiVersion"], out["kind"] = r.api_version, r.kind
    md = out.setdefault("metadata", {})
    for k in DROPPED_METADATA:
        md.pop(k, None)
    md["annotations"] = {k: v for k, v in (md.get("annotations") or {}).items()
                         if not k.startswith("pv.kubernetes.io/")} or None
    if md["annotations"] is None:
        md.pop("annotations")
    return out


def _kubeconfig(kubeconfig: str | os.PathLike | KubeConfig | None) -> KubeConfig:
    return kubeconfig if isinstance(kubeconfig, KubeConfig) else KubeConfig.load(
        None if kubeconfig is None else str(kubeconfig))


async def _backup(kc: KubeConfig, namespaces: list[str], dest: Path) -> ArchiveSummary:
    t0 = time.perf_counter()
    summary = ArchiveSummary(dest, namespaces)
    buf = io.BytesIO()
    async with Client(kc, user_agent="labkit-backup") as client:
        for ns in namespaces:
            try:
                await client.get("namespaces", ns)
            except ApiError as exc:
                if exc.code == 404:
                    raise ValueError(f"namespace {ns!r} does not exist in {kc.server}: "
                                     "name one that `kubectl get namespaces` lists") from None
                raise
        files: list[tuple[str, dict]] = []
        for plural in RESTORE_ORDER:
            r = resource(plural)
            if plural == "namespaces":
                items = [await client.get("namespaces", ns) for ns in namespaces]
            else:
                try:
                    lists = await asyncio.gather(*(client.list(r, ns) for ns in namespaces))
                except ApiError as exc:
                    if exc.code == 404:  # this server does not serve the resource: nothing of it to keep
                        continue
                    raise
                items = [i for lst in lists for i in lst.get("items") or []]
            for obj in items:
                obj.setdefault("metadata", {}).setdefault("namespace", None)
                if not r.namespaced:
                    obj["metadata"].pop("namespace", None)
                files.append((_entry(r, obj), obj))
            summary.counts[plural] = len(items)
    meta = {"kind": "labkit-backup", "version": 1, "server": kc.server, "namespaces": namespaces,
            "taken": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "counts": summary.counts,
            "left_out": list(LEFT_OUT)}
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        for name, obj in [("metadata.json", meta), *files]:
            data = json.dumps(obj, indent=1, sort_keys=True).encode()
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), int(time.time())
            tar.addfile(info, io.BytesIO(data))
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, dest)
    summary.seconds = time.perf_counter() - t0
    return summary


def backup_namespaces(namespaces: list[str] | str, dest: str | os.PathLike,
                      kubeconfig: str | os.PathLike | KubeConfig | None = None) -> ArchiveSummary:
    """Write every object of ``namespaces`` (as listed in :data:`RESTORE_ORDER`) to the tar.gz ``dest``."""
    if isinstance(namespaces, str):
        namespaces = [namespaces]
    if not namespaces:
        raise ValueError("name at least one namespace to back up (--namespace NS)")
    return run_sync(_backup(_kubeconfig(kubeconfig), list(namespaces), Path(dest)))


def read_archive(path: str | os.PathLike) -> tuple[dict, dict[str, list[dict]]]:
    """The archive's metadata and its objects per resource (as stored: old UIDs, status dropped later)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no backup archive at {path}: make one with `labkit backup create --namespace NS FILE`")
    objects: dict[str, list[dict]] = {}
    meta: dict = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for m in tar.getmembers():
                if not m.isfile():
                    continue
                data = json.loads(tar.extractfile(m).read())
                if m.name == "metadata.json":
                    meta = data
                elif m.name.startswith("resources/"):
                    objects.setdefault(m.name.split("/")[1], []).append(data)
    except (tarfile.TarError, OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a labkit backup archive ({exc})") from exc
    if meta.get("kind") != "labkit-backup":
        raise ValueError(f"{path} has no labkit-backup metadata.json: is it a store snapshot? "
                         "(restore those with `labkit backup restore --store`)")
    return meta, objects


def _rewire(obj: dict, uid_map: dict[str, str], notes: list[str]) -> int:
    """Point each owner reference at the owner's new UID; returns how many were rewired."""
    md = obj["metadata"]
    refs = md.get("ownerReferences") or []
    kept = []
    for ref in refs:
        new = uid_map.get(ref.get("uid", ""))
        if new is None:
            notes.append(f"{obj['kind']} {md.get('namespace')}/{md['name']}: owner {ref.get('kind')} "
                         f"{ref.get('name')} is not in the backup; reference dropped")
            continue
        kept.append({**ref, "uid": new})
    if kept:
        md["ownerReferences"] = kept
    else:
        md.pop("ownerReferences", None)
    return len(kept)


def _prepare(plural: str, obj: dict) -> dict:
    r = resource(plural)
    out = clean(obj, r)
    spec = out.get("spec") or {}
    if plural == "pods":
        spec.pop("nodeName", None)
    elif plural == "persistentvolumeclaims":
        spec.pop("volumeName", None)
    return out


async def _create_service(client: Client, obj: dict, notes: list[str]) -> dict:
    spec = obj.get("spec") or {}
    ip = spec.get("clusterIP")
    try:
        return await client.create("services", obj)
    except ApiError as exc:
        if exc.code != 422 or ip in (None, "", "None"):
            raise
    spec.pop("clusterIP", None)
    spec.pop("clusterIPs", None)
    for p in spec.get("ports") or []:
        p.pop("nodePort", None)
    created = await client.create("services", obj)
    md = obj["metadata"]
    notes.append(f"Service {md.get('namespace')}/{md['name']}: ClusterIP {ip} is taken here; "
                 f"reallocated {created['spec'].get('clusterIP')}")
    return created


async def _restore(kc: KubeConfig, path: Path, namespaces: list[str] | None) -> ArchiveSummary:
    t0 = time.perf_counter()
    meta, objects = read_archive(path)
    chosen = namespaces or meta.get("namespaces") or []
    summary = ArchiveSummary(path, list(chosen))
    uid_map = summary.uid_map
    rewired = 0
    sem = asyncio.Semaphore(CONCURRENCY)
    async with Client(kc, user_agent="labkit-restore") as client:
        async def one(plural: str, obj: dict) -> int:
            nonlocal rewired
            old_uid = obj["metadata"].get("uid", "")
            body = _prepare(plural, obj)
            rewired += _rewire(body, uid_map, summary.notes)
            async with sem:
                try:
                    if plural == "services":
                        made = await _create_service(client, body, summary.notes)
                    else:
                        made = await client.create(plural, body)
                except ApiError as exc:
                    if exc.code != 409:
                        raise
                    md = body["metadata"]
                    where = f"{md['namespace']}/" if md.get("namespace") else ""
                    made = await client.get(plural, md["name"], md.get("namespace"))
                    summary.notes.append(f"{body['kind']} {where}{md['name']} already exists here; kept as it is")
                    if old_uid:
                        uid_map[old_uid] = made["metadata"]["uid"]
                    return 0
            if old_uid:
                uid_map[old_uid] = made["metadata"]["uid"]
            return 1

        for plural in RESTORE_ORDER:
            items = [o for o in objects.get(plural, [])
                     if (o["metadata"].get("namespace") or o["metadata"].get("name")) in chosen]
            done = await asyncio.gather(*(one(plural, o) for o in items))
            summary.counts[plural] = sum(done)
    if rewired:
        summary.notes.insert(0, f"{rewired} owner reference(s) rewired to the new owners' UIDs")
    summary.seconds = time.perf_counter() - t0
    return summary


def restore_archive(path: str | os.PathLike, kubeconfig: str | os.PathLike | KubeConfig | None = None,
                    namespaces: list[str] | None = None) -> ArchiveSummary:
    """Create the archive's objects (all its namespaces, or those named) in the cluster of ``kubeconfig``."""
    return run_sync(_restore(_kubeconfig(kubeconfig), Path(path), namespaces))
