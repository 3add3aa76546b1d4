"""The ``docker`` backend: the Docker Engine, through its SDK, behind the same CRI shape.

This is what ``dockershim`` did inside the kubelet until Kubernetes 1.24: a pod sandbox is a
small do-nothing container (Kubernetes' ``pause``) that owns the pod's network, IPC and
hostname; each app container joins it with ``network_mode="container:<id>"`` and
``ipc_mode="container:<id>"``. Images come from labkit's own store through ``docker load``, so
the layers Docker runs are byte-for-byte the ones native, runc and crun run.

Everything labkit makes carries the label ``labkit=1`` so ``labkit gc`` can remove it.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import TYPE_CHECKING, Any

from labkit.errors import LabkitError, NotFound, Unsupported
from labkit.runtime import imagesource
from labkit.runtime.base import (
    ContainerConfig,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    ExecResult,
    ImageInfo,
    PodSandboxConfig,
    PodSandboxStatus,
    Runtime,
    SandboxState,
    VersionInfo,
)
from labkit.runtime.hostbackend import hostname_for

if TYPE_CHECKING:
    from labkit.runtime.streaming import ExecProcess

LABEL = "labkit"
KIND = "labkit.kind"
SANDBOX = "labkit.sandbox"
DIGEST = "labkit.image-digest"
PAUSE = ["sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"]
_STATES = {"created": ContainerState.CREATED, "running": ContainerState.RUNNING, "exited": ContainerState.EXITED,
           "dead": ContainerState.EXITED, "paused": ContainerState.RUNNING, "restarting": ContainerState.RUNNING}


def _ts(value: str | None) -> float | None:
    """Docker's RFC 3339 nanosecond timestamps → epoch seconds (None for the zero time)."""
    if not value or value.startswith("0001-"):
        return None
    main, _, frac = value.rstrip("Z").partition(".")
    base = datetime.fromisoformat(main + "+00:00").timestamp()
    return base + (float("0." + frac[:6]) if frac else 0.0)


def _api_message(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc).strip()


class DockerRuntime(Runtime):
    """CRI calls mapped onto the Docker Engine API."""

    name = "docker"

    def __init__(self, base_url: str | None = None, timeout: float = 60.0) -> None:
        try:
            import docker
            import docker.errors
        except ImportError as exc:
            raise Unsupported("the docker Python package is missing: pip install docker") from exc
        self._errors = docker.errors
        url = base_url or os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        if url.startswith("unix://") and not os.path.exists(url[len("unix://"):]):
            raise Unsupported(f"no Docker daemon: {url[len('unix://'):]} does not exist; start dockerd "
                              "(e.g. sudo dockerd &) or choose --runtime native|runc|simulated")
        try:
            self.client = docker.DockerClient(base_url=url, timeout=int(timeout))
            self._version = self.client.version()
        except Exception as exc:  # noqa: BLE001 - any failure means "no daemon"; say which
            raise Unsupported(f"no Docker daemon reachable at {url} ({exc.__class__.__name__}); start dockerd "
                              "or choose --runtime native|runc|simulated") from exc
        self._exported: dict[str, tuple[str, str]] = {}  # image name -> (docker ref, labkit digest)

    def close(self) -> None:
        self.client.close()

    def version(self) -> VersionInfo:
        return VersionInfo(runtime_name="docker", runtime_version=self._version.get("Version", "?"),
                           api_version=self._version.get("ApiVersion", "v1"))

    # --- images --------------------------------------------------------------
    def _ensure_image(self, name: str) -> tuple[str, str]:
        """Export ``name`` from labkit's store into Docker once; return (docker ref, digest)."""
        if name in self._exported:
            return self._exported[name]
        img = imagesource.get(name)
        from labkit.images.store import docker_ref

        ref = docker_ref(img.name)
        try:
            have = self.client.api.inspect_image(ref)["Id"]
        except self._errors.ImageNotFound:
            have = None
        if have != img.config_digest:
            ref = imagesource.store().export_to_docker(img).ref
        self._exported[name] = (ref, str(img.digest))
        return self._exported[name]

    def image_ref(self, name: str) -> str:
        """The tag Docker knows ``name`` by, after exporting it from labkit's store if needed."""
        return self._ensure_image(name)[0]

    def list_images(self) -> list[ImageInfo]:
        out = []
        for img in self.client.images.list():
            for tag in img.tags:
                if tag.startswith("labkit/"):
                    out.append(ImageInfo(name=tag, digest=img.id, size=int(img.attrs.get("Size", 0))))
        return out

    def image_status(self, image: str) -> ImageInfo | None:
        info = imagesource.status(image)
        if info is None:
            return None
        from labkit.images.store import docker_ref

        try:
            self.client.api.inspect_image(docker_ref(image))
        except self._errors.ImageNotFound:
            return None
        return info

    def pull_image(self, image: str) -> ImageInfo:
        self._ensure_image(image)
        return imagesource.pull(image)

    # --- sandboxes -----------------------------------------------------------
    def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        ref, _ = self._ensure_image("busybox")
        labels = {LABEL: "1", KIND: "sandbox", "labkit.pod": config.name, "labkit.namespace": config.namespace,
                  "labkit.uid": config.uid}
        labels.update({f"label.{k}": v for k, v in config.labels.items()})
        try:
            c = self.client.containers.run(ref, PAUSE, detach=True, hostname=hostname_for(config),
                                           network_mode="none", ipc_mode="shareable", labels=labels,
                                           name=f"lk-pod-{config.name[:40]}-{os.urandom(3).hex()}")
        except self._errors.APIError as exc:
            raise LabkitError(f"docker could not start the pod sandbox: {_api_message(exc)}") from exc
        return c.id

    def _list(self, filters: dict[str, str]) -> list[Any]:
        """Containers matching ``filters``. The SDK inspects each one after listing; a container the
        kubelet removes in between is skipped, not a 404 that fails the whole CRI call."""
        return self.client.containers.list(all=True, filters=filters, ignore_removed=True)

    def _get(self, cid: str, kind: str) -> Any:
        try:
            c = self.client.containers.get(cid)
        except self._errors.NotFound:
            raise NotFound(f"no {kind} {cid!r} in the docker runtime") from None
        if c.labels.get(LABEL) != "1":
            raise NotFound(f"{cid!r} is not a labkit {kind}")
        return c

    def stop_pod_sandbox(self, sandbox_id: str) -> None:
        for c in self.list_containers(sandbox_id):
            if c.state == ContainerState.RUNNING:
                self.stop_container(c.id, timeout=2)
        self._get(sandbox_id, "pod sandbox").stop(timeout=2)

    def remove_pod_sandbox(self, sandbox_id: str) -> None:
        for c in self._list({"label": f"{SANDBOX}={sandbox_id}"}):
            c.remove(force=True)
        try:
            self._get(sandbox_id, "pod sandbox").remove(force=True)
        except NotFound:
            pass

    def _sandbox_status(self, c: Any) -> PodSandboxStatus:
        st = c.attrs["State"]
        pid = st.get("Pid") or 0
        return PodSandboxStatus(
            id=c.id, name=c.labels.get("labkit.pod", c.name), namespace=c.labels.get("labkit.namespace", "default"),
            state=SandboxState.READY if st.get("Running") else SandboxState.NOTREADY,
            created_at=_ts(c.attrs.get("Created")) or 0.0,
            netns_path=f"/proc/{pid}/ns/net" if pid else None,
            labels={k[6:]: v for k, v in c.labels.items() if k.startswith("label.")})

    def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus:
        return self._sandbox_status(self._get(sandbox_id, "pod sandbox"))

    def list_pod_sandboxes(self) -> list[PodSandboxStatus]:
        return [self._sandbox_status(c) for c in
                self._list({"label": f"{KIND}=sandbox"})]

    # --- containers ----------------------------------------------------------
    def create_container(self, sandbox_id: str, config: ContainerConfig, sandbox_config: PodSandboxConfig) -> str:
        sb = self._get(sandbox_id, "pod sandbox")
        ref, digest = self._ensure_image(config.image)
        r = config.resources
        kw: dict[str, Any] = {}
        if r.memory_bytes is not None:
            kw["mem_limit"] = int(r.memory_bytes)
            kw["memswap_limit"] = int(r.memory_bytes)
        if r.cpu_quota_us is not None:
            kw["cpu_quota"], kw["cpu_period"] = int(r.cpu_quota_us), int(r.cpu_period_us)
        if r.pids_limit is not None:
            kw["pids_limit"] = int(r.pids_limit)
        if config.mounts:
            kw["volumes"] = {m.host_path: {"bind": m.container_path, "mode": "ro" if m.readonly else "rw"}
                             for m in config.mounts}
        if config.devices:
            kw["devices"] = [f"{d.host_path}:{d.container_path}:{d.permissions}" for d in config.devices]
        labels = {LABEL: "1", KIND: "container", SANDBOX: sb.id, DIGEST: digest, "labkit.name": config.name}
        labels.update({f"label.{k}": v for k, v in config.labels.items()})
        try:
            c = self.client.containers.create(
                ref, command=list(config.args) or None, entrypoint=list(config.command) or None,
                environment=dict(config.env), working_dir=config.working_dir, labels=labels,
                network_mode=f"container:{sb.id}", ipc_mode=f"container:{sb.id}",
                name=f"lk-{config.name[:40]}-{os.urandom(3).hex()}", **kw)
        except self._errors.APIError as exc:
            raise LabkitError(f"docker could not create the container: {_api_message(exc)}") from exc
        return c.id

    def start_container(self, container_id: str) -> None:
        c = self._get(container_id, "container")
        try:
            c.start()
        except self._errors.APIError as exc:
            msg = _api_message(exc)
            if "executable file not found" in msg or "no such file or directory" in msg:
                raise NotFound(f"executable not found in image {c.attrs['Config'].get('Image', '')}: {msg}") from exc
            raise LabkitError(f"docker could not start the container: {msg}") from exc

    def stop_container(self, container_id: str, timeout: float = 10.0) -> None:
        self._get(container_id, "container").stop(timeout=max(0, int(timeout)))

    def remove_container(self, container_id: str) -> None:
        try:
            self._get(container_id, "container").remove(force=True)
        except NotFound:
            pass

    def _status(self, c: Any) -> ContainerStatus:
        st = c.attrs["State"]
        state = _STATES.get(st.get("Status", ""), ContainerState.UNKNOWN)
        exited = state == ContainerState.EXITED
        code = st.get("ExitCode") if exited else None
        if exited:
            reason = "OOMKilled" if st.get("OOMKilled") else "Completed" if code == 0 else "Error"
        else:
            reason = ""
        return ContainerStatus(
            id=c.id, sandbox_id=c.labels.get(SANDBOX, ""), name=c.labels.get("labkit.name", c.name),
            image=c.attrs["Config"].get("Image", ""), image_ref=c.labels.get(DIGEST, c.attrs.get("Image", "")),
            state=state, created_at=_ts(c.attrs.get("Created")) or 0.0, started_at=_ts(st.get("StartedAt")),
            finished_at=_ts(st.get("FinishedAt")) if exited else None, exit_code=code, reason=reason,
            message=st.get("Error", ""), pid=st.get("Pid") or None,
            labels={k[6:]: v for k, v in c.labels.items() if k.startswith("label.")})

    def container_status(self, container_id: str) -> ContainerStatus:
        return self._status(self._get(container_id, "container"))

    def wait(self, container_id: str, timeout: float | None = None) -> ContainerStatus:
        """Block until the container exits (the Engine's own wait endpoint)."""
        c = self._get(container_id, "container")
        try:
            c.wait(timeout=timeout)
        except Exception:  # noqa: BLE001 - a timeout: report the current state
            pass
        return self.container_status(container_id)

    def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        flt = {"label": f"{SANDBOX}={sandbox_id}"} if sandbox_id else {"label": f"{KIND}=container"}
        return [self._status(c) for c in self._list(flt)]

    def logs(self, container_id: str) -> bytes:
        return self._get(container_id, "container").logs(stdout=True, stderr=True)

    def exec_sync(self, container_id: str, cmd: list[str], timeout: float = 10.0) -> ExecResult:
        c = self._get(container_id, "container")
        res = c.exec_run(list(cmd), demux=True)
        out, err = res.output if isinstance(res.output, tuple) else (res.output, b"")
        return ExecResult(exit_code=res.exit_code, stdout=out or b"", stderr=err or b"")

    def exec_spawn(self, container_id: str, cmd: list[str], stdin: int, stdout: int, stderr: int,
                   tty: bool = False) -> ExecProcess:
        """``docker exec -i [-t]``: the Docker CLI streams the command's stdio over the Engine API."""
        import shutil

        from labkit.runtime import streaming

        docker = shutil.which("docker")
        if docker is None:
            raise Unsupported("streaming exec on the docker runtime needs the docker command line "
                              "(apt-get install docker.io)")
        c = self._get(container_id, "container")
        return streaming.popen([docker, "exec", "-i"] + (["-t"] if tty else []) + [c.id] + list(cmd),
                               stdin, stdout, stderr, tty)

    def container_stats(self, container_id: str) -> ContainerStats:
        c = self._get(container_id, "container")
        try:
            s = c.stats(stream=False, one_shot=True)
        except TypeError:
            s = c.stats(stream=False)
        mem = (s.get("memory_stats") or {}).get("usage")
        cpu = ((s.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
        pids = (s.get("pids_stats") or {}).get("current")
        return ContainerStats(id=c.id, memory_bytes=mem, cpu_usage_ns=cpu, pids=pids)



