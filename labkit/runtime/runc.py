"""The ``oci`` backend: real ``runc`` or ``crun`` running a bundle labkit writes.

The bottom of a node's stack (kubelet -> CRI -> runtime -> OCI), as containerd does it: the image's layers become
an overlay root, :func:`labkit.oci.spec.make_config` writes ``config.json``, and the OCI runtime
binary is called as ``create`` (by the shim, which then waits for the container), ``start``,
``exec`` and ``delete``. Containers of one pod join the sandbox's net, uts and ipc namespaces by
path; each gets its own pid and mount namespaces (so ``echo $$`` prints 1).

crun 1.8 refuses a *hybrid* cgroup host (v1 controllers plus a v2 mount with controllers); there
labkit runs every crun command inside a private mount namespace where ``/sys/fs/cgroup/unified``
is unmounted. Nothing changes outside that namespace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit import system_parts
from labkit.errors import LabkitError, NotFound, Unsupported
from labkit.runtime import host, imagesource
from labkit.runtime.base import ContainerConfig, ExecResult, ImageInfo, VersionInfo
from labkit.runtime.hostbackend import LocalRuntime

if TYPE_CHECKING:
    from labkit.runtime.streaming import ExecProcess

_CRUN_WRAP = "umount /sys/fs/cgroup/unified 2>/dev/null; exec \"$@\""


def resolve_command(config: ContainerConfig, image_cfg: dict[str, Any]) -> list[str]:
    """CRI rules: ``command`` replaces ENTRYPOINT, ``args`` replaces CMD (dropped if only command is set)."""
    entry = list(config.command) or list(image_cfg.get("Entrypoint") or [])
    if config.args:
        args = list(config.args)
    elif config.command:
        args = []
    else:
        args = list(image_cfg.get("Cmd") or [])
    return entry + args


def find_executable(rootfs: Path, argv0: str, env: dict[str, str]) -> bool:
    """Does ``argv0`` exist inside ``rootfs`` (looked up on the container's PATH)?"""
    if "/" in argv0:
        return os.path.lexists(rootfs / argv0.lstrip("/"))
    for d in env.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(":"):
        if d and os.path.lexists(rootfs / d.lstrip("/") / argv0):
            return True
    return False


def env_dict(image_env: list[str] | None, extra: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in image_env or []:
        k, _, v = item.partition("=")
        out[k] = v
    out.update(extra)
    return out


class BundleRuntime(LocalRuntime):
    """A backend that runs OCI bundles through a runc-shaped command line."""

    #: join the sandbox's uts and ipc namespaces by path (as well as its netns)
    join_uts_ipc = True

    def __init__(self) -> None:
        super().__init__()
        self.state_root = self.root / "state"
        self.state_root.mkdir(parents=True, exist_ok=True)
        self._rootfs: dict[str, Any] = {}  # container id -> the image store's mount handle

    def runtime_argv(self) -> list[str]:
        raise NotImplementedError

    # --- images --------------------------------------------------------------
    def list_images(self) -> list[ImageInfo]:
        return imagesource.list_images()

    def image_status(self, image: str) -> ImageInfo | None:
        return imagesource.status(image)

    def pull_image(self, image: str) -> ImageInfo:
        return imagesource.pull(image)

    # --- the bundle ----------------------------------------------------------
    def _namespaces(self, sandbox: dict[str, Any]) -> list[dict[str, str]]:
        ns = [{"type": "pid"}, {"type": "mount"}, {"type": "network", "path": sandbox["netns_path"]}]
        if self.join_uts_ipc:
            ns += [{"type": "uts", "path": sandbox["uts_path"]}, {"type": "ipc", "path": sandbox["ipc_path"]}]
        else:
            ns += [{"type": "uts"}, {"type": "ipc"}]
        return ns

    def _prepare(self, cdir: Path, cid: str, config: ContainerConfig, sandbox: dict[str, Any]) -> dict[str, Any]:
        from labkit.oci import spec
        from labkit.oci.bundle import Bundle

        img = imagesource.get(config.image)
        icfg = imagesource.image_config(img)
        argv = resolve_command(config, icfg)
        if not argv:
            raise LabkitError(f"image {config.image!r} has no default command; give one, e.g. labkit run {config.image} -- sh")
        env = env_dict(icfg.get("Env"), config.env)
        cwd = config.working_dir or icfg.get("WorkingDir") or "/"
        cgroups_path = f"/labkit/{cid}"
        try:
            cfg = spec.make_config(argv, env=env, cwd=cwd, hostname=sandbox["hostname"], rootfs="rootfs",
                                   mounts=config.mounts, resources=config.resources, devices=config.devices,
                                   cgroups_path=cgroups_path, annotations=config.annotations or None)
        except spec.SpecError as exc:
            raise LabkitError(str(exc)) from exc
        cfg["linux"]["namespaces"] = self._namespaces(sandbox)
        bundle = Bundle.create(cdir / "bundle", cfg)
        handle = imagesource.store().prepare_rootfs(img, bundle.rootfs)
        self._rootfs[cid] = handle
        rootfs = Path(getattr(handle, "path", bundle.rootfs))
        if not find_executable(rootfs, argv[0], env):
            raise NotFound(f"executable {argv[0]!r} not found in image {config.image!r} (its PATH is {env.get('PATH', '?')})")
        pid_file = cdir / "container.pid"
        return {
            "image_ref": str(img.digest), "bundle": str(bundle.path), "cgroups_path": cgroups_path,
            "runtime_id": cid, "argv": argv,
            "shim": {"mode": "oci", "log": str(cdir / "container.log"), "pid_file": str(pid_file),
                     "cgroups_path": cgroups_path,
                     "create": self.runtime_argv() + ["create", "--bundle", str(bundle.path),
                                                      "--pid-file", str(pid_file), cid]},
        }

    def _call(self, args: list[str], what: str, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess:
        out = subprocess.run(self.runtime_argv() + args, capture_output=True, timeout=timeout)
        if check and out.returncode != 0:
            msg = (out.stderr or out.stdout).decode(errors="replace").strip()
            raise LabkitError(f"{self.name} {what} failed: {msg}")
        return out

    def _start(self, rec: dict[str, Any]) -> None:
        self._call(["start", rec["runtime_id"]], "start")

    def _delete(self, rec: dict[str, Any]) -> None:
        if rec.get("runtime_id"):
            self._call(["delete", "--force", rec["runtime_id"]], "delete", check=False)
        self._release_rootfs(rec["id"])

    def _release_rootfs(self, cid: str) -> None:
        """Unmount the container's root filesystem (overlay) once the runtime let go of it."""
        handle = self._rootfs.pop(cid, None)
        if handle is not None and hasattr(handle, "unmount"):
            try:
                handle.unmount()
            except OSError:
                pass

    def exec_sync(self, container_id: str, cmd: list[str], timeout: float = 10.0) -> ExecResult:
        _, rec = self._container(container_id)
        if not cmd:
            raise LabkitError("exec needs a command")
        try:
            out = subprocess.run(self.runtime_argv() + ["exec", rec["runtime_id"]] + list(cmd),
                                 capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            return ExecResult(exit_code=124, stdout=exc.stdout or b"", stderr=(exc.stderr or b"") + b"timed out")
        return ExecResult(exit_code=out.returncode, stdout=out.stdout, stderr=out.stderr)

    def exec_spawn(self, container_id: str, cmd: list[str], stdin: int, stdout: int, stderr: int,
                   tty: bool = False) -> ExecProcess:
        """``runc exec`` in pass-through mode: the command inherits these descriptors (a pty when ``tty``)."""
        from labkit.runtime import streaming

        _, rec = self._container(container_id)
        return streaming.popen(self.runtime_argv() + ["exec", rec["runtime_id"]] + list(cmd), stdin, stdout,
                               stderr, tty)


class OCIRuntime(BundleRuntime):
    """``OCIRuntime("runc")`` or ``OCIRuntime("crun")``: the real binaries, driven like containerd does."""

    def __init__(self, binary: str = "runc") -> None:
        if binary not in ("runc", "crun"):
            raise Unsupported(f"unknown OCI runtime {binary!r}; use runc or crun")
        path = shutil.which(binary)
        if path is None:
            raise Unsupported(f"{binary} is not installed: {system_parts.install_hint(binary)} (or use --runtime native)")
        ok, why = host.can_run_real_containers()
        if not ok:
            raise Unsupported(f"{binary} cannot run here: {why}")
        self.binary = path
        self.name = binary
        self.wrap_crun = binary == "crun" and host.crun_needs_unified_unmount()
        super().__init__()

    def runtime_argv(self) -> list[str]:
        argv = [self.binary, "--root", str(self.state_root)]
        if self.wrap_crun:
            return ["unshare", "-m", "sh", "-c", _CRUN_WRAP, "sh"] + argv
        return argv

    def version(self) -> VersionInfo:
        v = host.binary_version(self.name) or "?"
        return VersionInfo(runtime_name=self.name, runtime_version=v.split()[-1] if v else "?")
