"""The volumes a kubelet prepares itself: emptyDir, hostPath and configMap.

Other volume types (persistentVolumeClaim, csi) are the volume plugin's job (CSI); the kubelet
merges both maps and turns each container's ``volumeMounts`` into runtime mounts.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from labkit.runtime.base import Mount


def pod_dir(state: Path, uid: str) -> Path:
    return state / "kubelet" / "pods" / uid


async def prepare_builtin(pod: dict, state: Path, get_configmap) -> dict[str, str]:
    """Create emptyDir dirs and configMap files; return volume name -> host path."""
    out: dict[str, str] = {}
    uid = pod["metadata"].get("uid", "nouid")
    base = pod_dir(state, uid) / "volumes"
    for v in (pod.get("spec") or {}).get("volumes") or []:
        name = v.get("name")
        if "emptyDir" in v:
            p = base / "empty-dir" / name
            p.mkdir(parents=True, exist_ok=True)
            out[name] = str(p)
        elif "hostPath" in v:
            hp = v["hostPath"].get("path", "")
            if v["hostPath"].get("type") in ("DirectoryOrCreate",):
                os.makedirs(hp, exist_ok=True)
            out[name] = hp
        elif "configMap" in v:
            cm = await get_configmap(v["configMap"].get("name", ""), pod["metadata"].get("namespace", "default"))
            p = base / "configmap" / name
            p.mkdir(parents=True, exist_ok=True)
            for k, val in (cm.get("data") or {}).items():
                (p / k).write_text(val)
            out[name] = str(p)
    return out


def container_mounts(c: dict, paths: dict[str, str]) -> list[Mount]:
    mounts = []
    for vm in c.get("volumeMounts") or []:
        host = paths.get(vm.get("name", ""))
        if host is None:
            continue
        if vm.get("subPath"):
            host = os.path.join(host, vm["subPath"])
            os.makedirs(host, exist_ok=True)
        mounts.append(Mount(host_path=host, container_path=vm["mountPath"], readonly=bool(vm.get("readOnly"))))
    return mounts


def remove_pod_dir(state: Path, uid: str) -> None:
    shutil.rmtree(pod_dir(state, uid), ignore_errors=True)
