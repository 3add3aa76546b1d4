"""The kubelet's CSI hook: mount a pod's PersistentVolumeClaims through the driver's Node service.

For each ``persistentVolumeClaim`` volume of the pod: read the claim, read the PersistentVolume
it is bound to, and call ``NodePublishVolume`` on the driver named in ``spec.csi.driver`` with
the pod's own target directory (``.../pods/<uid>/volumes/kubernetes.io~csi/<volume>/mount``, the
same layout as a real kubelet). A ``vol_data.json`` beside it remembers what was published, so
unmounting works even after the kubelet restarts.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from labkit import paths
from labkit.client.blocking import BlockingClient
from labkit.client.kubeconfig import KubeConfig
from labkit.client.rest import ApiError
from labkit.csi.client import CSIClient, CSIError
from labkit.node.kubelet.plugins import PluginError, VolumePlugin


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    with open("/proc/self/mountinfo") as f:
        return [ln.split()[4] for ln in f if ln.split()[4].startswith(prefix)]


class CSIVolumePlugin(VolumePlugin):
    """PVC volumes → PV → CSI driver → bind mount into the pod's directory."""

    def __init__(self, drivers: dict[str, str], kubeconfig: KubeConfig | str | None = None,
                 pods_dir: str | Path | None = None):
        self.drivers = dict(drivers)  # CSI driver name -> its socket endpoint
        self._kc = kubeconfig
        self.pods_dir = Path(pods_dir or paths.state_dir() / "csi-pods")
        self._clients: dict[str, CSIClient] = {}
        self._api: BlockingClient | None = None

    @property
    def kubeconfig(self) -> KubeConfig:
        if not isinstance(self._kc, KubeConfig):
            self._kc = KubeConfig.load(self._kc)
        return self._kc

    @property
    def api(self) -> BlockingClient:
        """The API reads of the mount hook (a claim, its volume), made from the kubelet's worker threads."""
        if self._api is None:
            self._api = BlockingClient(self.kubeconfig, user_agent="labkit-kubelet/csi")
        return self._api

    def _client(self, driver: str) -> CSIClient:
        if driver not in self.drivers:
            raise PluginError(f"CSI driver {driver!r} is not registered on this node (have {sorted(self.drivers)})",
                              reason="FailedMount")
        if driver not in self._clients:
            self._clients[driver] = CSIClient(self.drivers[driver])
        return self._clients[driver]

    def _target(self, uid: str, volume: str) -> Path:
        return self.pods_dir / uid / "volumes" / "kubernetes.io~csi" / volume / "mount"

    def _resolve(self, namespace: str, claim: str) -> dict:
        """The PV behind a claim, or a FailedMount that says what is missing."""
        try:
            c = self.api.get("persistentvolumeclaims", claim, namespace)
        except ApiError as exc:
            if exc.code == 404:
                raise PluginError(f'persistentvolumeclaim "{claim}" not found', reason="FailedMount") from None
            raise PluginError(exc.message, reason="FailedMount") from None
        volume_name = (c.get("spec") or {}).get("volumeName")
        phase = (c.get("status") or {}).get("phase", "Pending")
        if not volume_name or phase != "Bound":
            raise PluginError(f'persistentvolumeclaim "{claim}" is not bound yet (phase {phase})',
                              reason="FailedMount")
        try:
            return self.api.get("persistentvolumes", volume_name)
        except ApiError as exc:
            raise PluginError(f"persistentvolume {volume_name!r} of claim {claim!r}: {exc.message}",
                              reason="FailedMount") from None

    def mount_pod_volumes(self, pod: dict) -> dict[str, str]:
        md = pod.get("metadata", {})
        uid, ns = md.get("uid") or md.get("name", "nouid"), md.get("namespace", "default")
        out: dict[str, str] = {}
        try:
            for v in (pod.get("spec") or {}).get("volumes") or []:
                src = v.get("persistentVolumeClaim")
                if not src:
                    continue
                pv = self._resolve(ns, src.get("claimName", ""))
                spec = pv.get("spec") or {}
                if "hostPath" in spec:  # a static hostPath PV: no driver involved
                    out[v["name"]] = spec["hostPath"]["path"]
                    continue
                csi = spec.get("csi")
                if not csi:
                    raise PluginError(f"persistentvolume {pv['metadata']['name']} is neither csi nor hostPath",
                                      reason="FailedMount")
                target = self._target(uid, v["name"])
                readonly = bool(src.get("readOnly") or csi.get("readOnly"))
                try:
                    self._client(csi["driver"]).publish(csi["volumeHandle"], str(target), readonly,
                                                        csi.get("volumeAttributes") or {})
                except CSIError as exc:
                    raise PluginError(f"MountVolume.SetUp failed for volume {v['name']!r}: {exc}",
                                      reason="FailedMount") from None
                (target.parent / "vol_data.json").write_text(json.dumps(
                    {"driverName": csi["driver"], "volumeHandle": csi["volumeHandle"], "specVolID": v["name"]}))
                out[v["name"]] = str(target)
        except PluginError:
            self.unmount_pod_volumes(pod)  # a pod half-mounted is a leak: undo what was done
            raise
        return out

    def unmount_pod_volumes(self, pod: dict) -> None:
        md = pod.get("metadata", {})
        uid = md.get("uid") or md.get("name", "nouid")
        base = self.pods_dir / uid / "volumes" / "kubernetes.io~csi"
        errors = []
        for data in sorted(base.glob("*/vol_data.json")):
            info = json.loads(data.read_text())
            try:
                self._client(info["driverName"]).unpublish(info["volumeHandle"], str(data.parent / "mount"))
                data.unlink()
            except (CSIError, PluginError) as exc:
                errors.append(str(exc))
        if errors:
            raise PluginError("; ".join(errors), reason="FailedUnmount")
        pod_dir = self.pods_dir / uid
        if not _mounts_under(pod_dir):  # never rm -r through a live mount: that is the volume's data
            shutil.rmtree(pod_dir, ignore_errors=True)

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
        self._clients.clear()
        if self._api is not None:
            self._api.close()
            self._api = None
