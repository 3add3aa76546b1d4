"""The ``native`` backend: labkit's own OCI runtime (:mod:`labkit.oci.native`) behind the CRI.

Same bundle, same sandbox as the ``oci`` backend — only the last step differs: instead of
running the ``runc`` binary, the runtime's library forks the container straight from this
Python process (its own small shim waits for it and writes the exit status). That is why a
container starts in milliseconds here, and why you can read every step in Python.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.errors import LabkitError, NotFound, Unsupported
from labkit.oci import cgroups
from labkit.runtime import host, records
from labkit.runtime.base import ContainerConfig, ExecResult, VersionInfo
from labkit.runtime.runc import BundleRuntime

if TYPE_CHECKING:
    from labkit.runtime.streaming import ExecProcess


class NativeRuntime(BundleRuntime):
    name = "native"

    def __init__(self) -> None:
        ok, why = host.can_run_real_containers()
        if not ok:
            raise Unsupported(f"the native runtime cannot run here: {why}")
        from labkit.oci import native

        self.lib = native
        super().__init__()

    def runtime_argv(self) -> list[str]:
        """The runc-shaped command line of the same runtime (for people, and for gc)."""
        return [sys.executable, "-m", "labkit.oci.native", "--root", str(self.state_root)]

    def version(self) -> VersionInfo:
        return VersionInfo(runtime_name="native", runtime_version=f"{self.lib.RUNTIME_NAME} {self.lib.VERSION}")

    def _handle(self, cid: str):
        try:
            return self.lib.NativeContainer.load(cid, root=self.state_root)
        except self.lib.ContainerNotFound:
            return None

    def _prepare(self, cdir: Path, cid: str, config: ContainerConfig, sandbox: dict[str, Any]) -> dict[str, Any]:
        rec = super()._prepare(cdir, cid, config, sandbox)
        rec["shim"] = None  # the native runtime brings its own shim
        return rec

    def _launch(self, cdir: Path, rec: dict[str, Any]) -> None:
        # the shim forked here closes every descriptor it does not need, so a shell reading our
        # output (``id=$(labkit run -d ...)``) is not kept waiting by a container that outlives us
        fd = os.open(rec["log_path"], os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            c = self.lib.NativeContainer(rec["bundle"], rec["id"], root=self.state_root, stdout=fd, stderr=fd,
                                         detach=True)
            pid = c.create(fifo=True)
        except self.lib.ExecutableNotFound as exc:
            raise NotFound(str(exc)) from exc
        finally:
            os.close(fd)
        (cdir / "pid").write_text(str(pid))

    def _start(self, rec: dict[str, Any]) -> None:
        c = self._handle(rec["id"])
        if c is None:
            raise NotFound(f"native runtime has no container {rec['id'][:12]}")
        try:
            c.start()
        except self.lib.ExecutableNotFound as exc:
            raise NotFound(str(exc)) from exc

    def _exit(self, cdir: Path, rec: dict[str, Any]) -> dict[str, Any] | None:
        mine = records.read_json(cdir / "exit.json")
        if mine is not None:
            return mine
        theirs = records.read_json(self.state_root / rec["id"] / "exit.json")
        if theirs is None:
            return None
        self._reap(rec["id"])
        code = int(theirs.get("code", 255))
        oom = cgroups.oom_kills(rec["cgroups_path"]) if code != 0 else 0
        from labkit.runtime.shim import _reason, write_exit

        write_exit(cdir, code, _reason(code, oom), oom=oom)
        return records.read_json(cdir / "exit.json")

    def _reap(self, cid: str) -> None:
        """The native shim may be our child: collect it so it does not linger as a zombie."""
        st = records.read_json(self.state_root / cid / "state.json") or {}
        pid = st.get("shim_pid")
        if pid:
            try:
                os.waitpid(int(pid), os.WNOHANG)
            except (ChildProcessError, OSError):
                pass

    def _delete(self, rec: dict[str, Any]) -> None:
        c = self._handle(rec["id"])
        if c is not None:
            try:
                c.delete(force=True)
            except self.lib.NativeError as exc:
                raise LabkitError(f"native delete failed: {exc}") from exc
            self._reap(rec["id"])
        else:
            # create never finished (no state.json): remove what it had made so far
            self._forget(rec["id"], rec.get("cgroups_path"))
        self._release_rootfs(rec["id"])

    def _forget(self, cid: str, cgroups_path: str | None) -> None:
        import shutil

        if cgroups_path:
            try:
                group = cgroups.Cgroup(cgroups_path)
                group.kill()
                group.destroy()
            except (cgroups.CgroupError, OSError):
                pass
        shutil.rmtree(self.state_root / cid, ignore_errors=True)

    def exec_sync(self, container_id: str, cmd: list[str], timeout: float = 10.0) -> ExecResult:
        _, rec = self._container(container_id)
        c = self._handle(rec["id"])
        if c is None:
            raise NotFound(f"container {container_id[:12]} is gone")
        try:
            out = c.exec(list(cmd), timeout=timeout)
        except self.lib.NativeError as exc:
            raise LabkitError(str(exc)) from exc
        return ExecResult(exit_code=out.exit_code, stdout=out.stdout, stderr=out.stderr)

    def exec_spawn(self, container_id: str, cmd: list[str], stdin: int, stdout: int, stderr: int,
                   tty: bool = False) -> ExecProcess:
        """Fork straight into the container's namespaces and cgroup (no runtime binary in between)."""
        from labkit.runtime import streaming

        _, rec = self._container(container_id)
        c = self._handle(rec["id"])
        if c is None:
            raise NotFound(f"container {container_id[:12]} is gone")
        try:
            return streaming.ForkedProcess(c.exec_spawn(list(cmd), (stdin, stdout, stderr), tty))
        except self.lib.NativeError as exc:
            raise LabkitError(str(exc)) from exc
