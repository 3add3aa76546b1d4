"""What the native, OCI and simulated backends share: records on disk, sandboxes and shims.

A backend subclass only says how to *prepare* a container (a bundle, or a plain command), how
to start it, and how to delete what the runtime made. Everything else — ids, the sandbox
folder, the per-container shim that reports the exit status, status/logs/stats — lives here,
so the backends differ exactly where runc, crun and labkit's own runtime really differ.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import labkit
from labkit.errors import LabkitError, NotFound
from labkit.oci import spec
from labkit.runtime import records
from labkit.runtime.base import (
    ContainerConfig,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    PodSandboxConfig,
    PodSandboxStatus,
    Runtime,
    SandboxState,
)

LABKIT_PARENT = str(Path(labkit.__file__).resolve().parent.parent)


def shim_command() -> list[str]:
    """The shim's command line: ``-S`` skips site-packages (~15 ms); labkit is found by PYTHONPATH."""
    return [sys.executable, "-S", "-m", "labkit.runtime.shim"]


def hostname_for(config: PodSandboxConfig) -> str:
    """The sandbox's hostname: the one asked for or the pod's name, made a valid host name."""
    return spec.clean_hostname(config.hostname or config.name or "pod")


class LocalRuntime(Runtime):
    """Shared machinery for backends whose containers are processes on this host."""

    name = "local"
    #: create net/uts/ipc namespaces for each sandbox (False for the simulated backend)
    isolated = True
    #: the shim starts at create_container (OCI: runtime create) or at start_container (exec)
    shim_at_create = True

    def __init__(self) -> None:
        self.root = records.backend_root(self.name)
        self.sandboxes = self.root / "sandboxes"
        self.containers = self.root / "containers"
        self.sandboxes.mkdir(parents=True, exist_ok=True)
        self.containers.mkdir(parents=True, exist_ok=True)

    # --- hooks for subclasses ------------------------------------------------
    def _prepare(self, cdir: Path, cid: str, config: ContainerConfig, sandbox: dict[str, Any]) -> dict[str, Any]:
        """Make what the container needs; return the record fields (incl. ``shim`` task)."""
        raise NotImplementedError

    def _start(self, rec: dict[str, Any]) -> None:
        raise NotImplementedError

    def _launch(self, cdir: Path, rec: dict[str, Any]) -> None:
        """Bring the container to "created": by default a shim that runs the runtime's create."""
        self._spawn_shim(cdir)

    def _exit(self, cdir: Path, rec: dict[str, Any]) -> dict[str, Any] | None:
        """How the container ended (``exit.json``), or None while it has not."""
        return records.read_json(cdir / "exit.json")

    def _delete(self, rec: dict[str, Any]) -> None:
        """Remove what the runtime made for this container (state, cgroup, rootfs mount)."""

    # --- sandboxes -----------------------------------------------------------
    def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        sid = records.new_id()
        folder = self.sandboxes / sid
        folder.mkdir(parents=True)
        rec: dict[str, Any] = {
            "id": sid, "name": config.name, "namespace": config.namespace, "uid": config.uid,
            "hostname": hostname_for(config), "labels": dict(config.labels),
            "annotations": dict(config.annotations), "created_at": time.time(),
            "state": SandboxState.READY.value, "netns_path": None,
        }
        if self.isolated:
            from labkit.runtime import sandbox

            try:
                ns = sandbox.create_namespaces(sid, folder / "ns", rec["hostname"])
            except Exception:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            rec.update(netns_path=ns.net, uts_path=ns.uts, ipc_path=ns.ipc)
        records.write_json(folder / "sandbox.json", rec)
        return sid

    def _sandbox(self, sandbox_id: str) -> tuple[Path, dict[str, Any]]:
        folder = records.resolve(self.sandboxes, sandbox_id)
        rec = records.read_json(folder / "sandbox.json") if folder else None
        if folder is None or rec is None:
            raise NotFound(f"no pod sandbox {sandbox_id!r} in the {self.name} runtime")
        return folder, rec

    def stop_pod_sandbox(self, sandbox_id: str) -> None:
        folder, rec = self._sandbox(sandbox_id)
        for c in self.list_containers(rec["id"]):
            if c.state == ContainerState.RUNNING:
                self.stop_container(c.id, timeout=2.0)
        if self.isolated and rec["state"] == SandboxState.READY.value:
            from labkit.runtime import sandbox

            # CRI: a stopped sandbox releases its network; the records stay until removal
            sandbox.destroy_namespaces(rec["id"], folder / "ns")
        rec["state"] = SandboxState.NOTREADY.value
        records.write_json(folder / "sandbox.json", rec)

    def remove_pod_sandbox(self, sandbox_id: str) -> None:
        try:
            folder, rec = self._sandbox(sandbox_id)
        except NotFound:
            return  # CRI: removing a removed sandbox is not an error
        for c in self.list_containers(rec["id"]):
            self.remove_container(c.id)
        if self.isolated:
            from labkit.runtime import sandbox

            sandbox.destroy_namespaces(rec["id"], folder / "ns")
        shutil.rmtree(folder, ignore_errors=True)

    def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus:
        _, rec = self._sandbox(sandbox_id)
        return PodSandboxStatus(id=rec["id"], name=rec["name"], namespace=rec["namespace"],
                                state=SandboxState(rec["state"]), created_at=rec["created_at"],
                                netns_path=rec.get("netns_path"), ip=rec.get("ip"),
                                labels=rec.get("labels", {}))

    def list_pod_sandboxes(self) -> list[PodSandboxStatus]:
        out = []
        for p in sorted(self.sandboxes.iterdir()):
            try:
                out.append(self.pod_sandbox_status(p.name))
            except NotFound:
                continue
        return out

    # --- containers ----------------------------------------------------------
    def create_container(self, sandbox_id: str, config: ContainerConfig, sandbox_config: PodSandboxConfig) -> str:
        _, sb = self._sandbox(sandbox_id)
        if sb["state"] != SandboxState.READY.value:
            raise LabkitError(f"pod sandbox {sandbox_id[:12]} is not ready (stopped); create a new one")
        cid = records.new_id()
        cdir = self.containers / cid
        cdir.mkdir(parents=True)
        log = Path(cdir / "container.log")
        log.touch()
        rec: dict[str, Any] = {
            "id": cid, "sandbox_id": sb["id"], "name": config.name, "image": config.image,
            "image_ref": "", "created_at": time.time(), "log_path": str(log),
            "labels": dict(config.labels), "annotations": dict(config.annotations),
        }
        try:
            rec.update(self._prepare(cdir, cid, config, sb))
            records.write_json(cdir / "container.json", rec)
            if rec.get("shim"):
                records.write_json(cdir / "shim.json", rec["shim"])
            if self.shim_at_create:
                self._launch(cdir, rec)
        except BaseException:
            self._discard(cdir, rec)
            raise
        return cid

    def _discard(self, cdir: Path, rec: dict[str, Any]) -> None:
        try:
            self._delete(rec)
        finally:
            self._remove_folder(cdir)

    def _spawn_shim(self, cdir: Path) -> int:
        """Start the shim, wait for its "ok <pid>" (or its error), return the container's pid."""
        from labkit.runtime.shim import READY_FD_ENV

        r, w = os.pipe()
        env = dict(os.environ)
        env[READY_FD_ENV] = str(w)
        env["PYTHONPATH"] = LABKIT_PARENT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        with open(cdir / "shim.log", "ab") as err:
            subprocess.Popen(shim_command() + [str(cdir)], stdin=subprocess.DEVNULL, stdout=err,
                             stderr=err, pass_fds=(w,), start_new_session=True, env=env)
        os.close(w)
        chunks = []
        with os.fdopen(r, "rb") as rf:
            while True:
                b = rf.read()
                if not b:
                    break
                chunks.append(b)
        line = b"".join(chunks).decode(errors="replace").strip()
        if line.startswith("ok "):
            return int(line.split()[1])
        if not line:
            tail = (cdir / "shim.log").read_text(errors="replace")[-400:] if (cdir / "shim.log").exists() else ""
            line = f"error the shim died before the container started: {tail.strip()}"
        raise LabkitError(f"{self.name}: could not create container: {line[6:] if line.startswith('error ') else line}")

    def _container(self, container_id: str) -> tuple[Path, dict[str, Any]]:
        cdir = records.resolve(self.containers, container_id)
        rec = records.read_json(cdir / "container.json") if cdir else None
        if cdir is None or rec is None:
            raise NotFound(f"no container {container_id!r} in the {self.name} runtime (see: labkit ps)")
        return cdir, rec

    def start_container(self, container_id: str) -> None:
        cdir, rec = self._container(container_id)
        ex = self._exit(cdir, rec)
        if ex is not None:
            raise LabkitError(f"container {container_id[:12]} cannot start: {ex.get('message') or ex.get('reason')}")
        if rec.get("started_at"):
            raise LabkitError(f"container {container_id[:12]} was already started")
        rec["started_at"] = time.time()
        records.write_json(cdir / "container.json", rec)
        self._start(rec)

    def _pid(self, cdir: Path) -> int | None:
        try:
            return int((cdir / "pid").read_text())
        except (OSError, ValueError):
            return None

    def container_status(self, container_id: str) -> ContainerStatus:
        cdir, rec = self._container(container_id)
        ex = self._exit(cdir, rec)
        pid = self._pid(cdir)
        st = ContainerStatus(
            id=rec["id"], sandbox_id=rec["sandbox_id"], name=rec["name"], image=rec["image"],
            image_ref=rec.get("image_ref", ""), state=ContainerState.CREATED, created_at=rec["created_at"],
            started_at=rec.get("started_at"), pid=pid, log_path=rec.get("log_path"), labels=rec.get("labels", {}),
        )
        if ex is not None:
            st.state = ContainerState.EXITED
            st.exit_code = ex["exit_code"]
            st.reason = ex.get("reason", "")
            st.message = ex.get("message", "")
            st.finished_at = ex.get("finished_at")
            st.pid = None
        elif rec.get("started_at"):
            alive = pid is not None and os.path.exists(f"/proc/{pid}") if sys.platform.startswith("linux") else True
            st.state = ContainerState.RUNNING if alive else ContainerState.UNKNOWN
        return st

    def has_exited(self, container_id: str) -> bool:
        """True once the container's process has ended (cheap: one file check)."""
        cdir, rec = self._container(container_id)
        return self._exit(cdir, rec) is not None

    def wait(self, container_id: str, timeout: float | None = None) -> ContainerStatus:
        """Block until the container exits (not in the CRI; the kubelet polls status instead)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        cdir, rec = self._container(container_id)
        delay = 0.0005
        while self._exit(cdir, rec) is None:
            if deadline is not None and time.monotonic() > deadline:
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
        return self.container_status(container_id)

    def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        out = []
        for p in sorted(self.containers.iterdir()):
            try:
                st = self.container_status(p.name)
            except NotFound:
                continue
            if sandbox_id is None or st.sandbox_id == sandbox_id:
                out.append(st)
        return out

    def _signal(self, rec: dict[str, Any], sig: int) -> None:
        """Signal the container's first process by its host pid (what ``runc kill`` does)."""
        pid = self._pid(self.containers / rec["id"])
        if pid is None:
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def stop_container(self, container_id: str, timeout: float = 10.0) -> None:
        cdir, rec = self._container(container_id)
        if self._exit(cdir, rec) is not None:
            return
        if not rec.get("started_at"):
            # a created, never started container: kill it so the shim records an exit
            self._signal(rec, signal.SIGKILL)
            self.wait(container_id, 5.0)
            return
        self._signal(rec, signal.SIGTERM)
        if self.wait(container_id, timeout).state != ContainerState.EXITED:
            self._signal(rec, signal.SIGKILL)
            self.wait(container_id, 10.0)

    def remove_container(self, container_id: str) -> None:
        try:
            cdir, rec = self._container(container_id)
        except NotFound:
            return
        if self._exit(cdir, rec) is None:
            self._signal(rec, signal.SIGKILL)
            self.wait(container_id, 10.0)
        self._discard(cdir, rec)

    def _remove_folder(self, cdir: Path) -> None:
        from labkit.runtime import mounts

        mounts.unmount_under(cdir)
        if mounts.mounted_under(cdir):
            raise LabkitError(f"{cdir} still has mounts; run: labkit gc")
        shutil.rmtree(cdir, ignore_errors=True)

    def logs(self, container_id: str) -> bytes:
        cdir, rec = self._container(container_id)
        try:
            return Path(rec["log_path"]).read_bytes()
        except OSError:
            return b""

    def container_stats(self, container_id: str) -> ContainerStats:
        from labkit.oci import cgroups

        _, rec = self._container(container_id)
        path = rec.get("cgroups_path")
        if not path:
            return ContainerStats(id=rec["id"])
        mem, cpu, pids = cgroups.usage(path)
        return ContainerStats(id=rec["id"], memory_bytes=mem, cpu_usage_ns=cpu, pids=pids)
