"""A CSI hostpath driver: volumes are directories on the host, published into pods by bind mount.

It implements the three CSI services a storage vendor ships, over gRPC on a unix socket:

* **Identity**  - GetPluginInfo, GetPluginCapabilities, Probe: "who are you, are you ready?"
* **Controller** - CreateVolume / DeleteVolume: make or destroy a volume (here: a directory
  under ``--root``); called by the provisioner when a claim needs a new volume. CreateSnapshot /
  DeleteSnapshot: copy a volume's files aside (under ``<root>-snapshots``), called by the snapshot
  controller for a VolumeSnapshot; CreateVolume with a snapshot as its content source starts the
  new volume as a copy of that snapshot. (Like the upstream hostpath driver, the copy is taken
  while the pod may write: crash-consistent per file, not an atomic freeze of the volume.)
* **Node** - NodePublishVolume / NodeUnpublishVolume: make a volume appear at the path the
  kubelet chose for a pod (here: ``mount --bind``), and take it away again.

The data lives in the volume directory, not in the pod, so it outlives every pod that mounts it.

    python -m labkit.node.csi.driver --socket /run/labkit/csi/hostpath.sock --root /var/lib/labkit/data/csi
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent import futures
from pathlib import Path

import grpc
from google.protobuf import timestamp_pb2, wrappers_pb2

from labkit import paths
from labkit.csi import csi_pb2 as pb
from labkit.csi import csi_pb2_grpc as pb_grpc
from labkit.node.signals import wait_for_termination

DRIVER_NAME = "hostpath.csi.labkit.io"
VERSION = "0.1.0"
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def is_mounted(path: str | os.PathLike) -> bool:
    """True when ``path`` is a mount point (as /proc/self/mountinfo lists it)."""
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == target for line in f)


def published_at(directory: str | os.PathLike) -> list[str]:
    """Mount points that show ``directory`` (a bind mount's root has the source's device and inode)."""
    try:
        st = os.stat(directory)
    except OSError:
        return []
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            try:
                m = os.stat(mp)
            except OSError:
                continue
            if (m.st_dev, m.st_ino) == (st.st_dev, st.st_ino) and os.path.realpath(mp) != os.path.realpath(directory):
                out.append(mp)
    return out


class HostPathDriver(pb_grpc.IdentityServicer, pb_grpc.ControllerServicer, pb_grpc.NodeServicer):
    """All three services in one object, as most small drivers are deployed."""

    def __init__(self, root: str | os.PathLike, node_id: str = "labkit-node"):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.snapshot_root = self.root.with_name(self.root.name + "-snapshots")
        self.node_id = node_id
        self.calls: list[str] = []  # method names in order: the lab shows the protocol with these

    def _volume_dir(self, volume_id: str, context) -> Path:
        if not _SAFE_ID.match(volume_id or ""):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"volume_id {volume_id!r} is not a valid volume id")
        return self.root / volume_id

    def _snapshot_dir(self, snapshot_id: str, context) -> Path:
        if not _SAFE_ID.match(snapshot_id or ""):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"snapshot_id {snapshot_id!r} is not a valid snapshot id")
        return self.snapshot_root / snapshot_id

    # --- Identity ---------------------------------------------------------
    def GetPluginInfo(self, request, context):
        self.calls.append("GetPluginInfo")
        return pb.GetPluginInfoResponse(name=DRIVER_NAME, vendor_version=VERSION, manifest={"root": str(self.root)})

    def GetPluginCapabilities(self, request, context):
        self.calls.append("GetPluginCapabilities")
        svc = pb.PluginCapability.Service(type=pb.PluginCapability.Service.CONTROLLER_SERVICE)
        return pb.GetPluginCapabilitiesResponse(capabilities=[pb.PluginCapability(service=svc)])

    def Probe(self, request, context):
        self.calls.append("Probe")
        return pb.ProbeResponse(ready=wrappers_pb2.BoolValue(value=self.root.is_dir()))

    # --- Controller -------------------------------------------------------
    def ControllerGetCapabilities(self, request, context):
        self.calls.append("ControllerGetCapabilities")
        rpc = pb.ControllerServiceCapability.RPC
        return pb.ControllerGetCapabilitiesResponse(capabilities=[
            pb.ControllerServiceCapability(rpc=rpc(type=t))
            for t in (rpc.CREATE_DELETE_VOLUME, rpc.CREATE_DELETE_SNAPSHOT)])

    def CreateVolume(self, request, context):
        self.calls.append("CreateVolume")
        if not request.name:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "CreateVolume needs a name")
        if not request.volume_capabilities:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "CreateVolume needs volume_capabilities")
        if any(c.HasField("block") for c in request.volume_capabilities):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "hostpath volumes are filesystems; block access is not offered")
        d = self._volume_dir(request.name, context)
        size = request.capacity_range.required_bytes or 1 << 30
        source = request.volume_content_source if request.HasField("volume_content_source") else None
        if source is not None and source.HasField("volume"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "hostpath does not clone volumes; restore from a snapshot")
        if source is not None and source.HasField("snapshot"):
            snap = self._snapshot_dir(source.snapshot.snapshot_id, context)
            if not snap.is_dir():
                context.abort(grpc.StatusCode.NOT_FOUND, f"snapshot {source.snapshot.snapshot_id} does not exist")
            if not d.exists():  # idempotent: a retried call finds the volume already made
                tmp = d.with_name(d.name + ".restoring")
                shutil.rmtree(tmp, ignore_errors=True)
                shutil.copytree(snap, tmp, symlinks=True)
                tmp.rename(d)
        d.mkdir(exist_ok=True)  # idempotent: the same name twice is the same volume
        return pb.CreateVolumeResponse(volume=pb.Volume(volume_id=request.name, capacity_bytes=size,
                                                        volume_context={"path": str(d)},
                                                        content_source=source))

    def CreateSnapshot(self, request, context):
        self.calls.append("CreateSnapshot")
        if not request.name or not request.source_volume_id:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "CreateSnapshot needs a name and a source_volume_id")
        src = self._volume_dir(request.source_volume_id, context)
        snap = self._snapshot_dir(request.name, context)
        if not src.is_dir():
            context.abort(grpc.StatusCode.NOT_FOUND, f"volume {request.source_volume_id} does not exist under {self.root}")
        if not snap.exists():  # idempotent: the same name twice is the same snapshot
            tmp = snap.with_name(snap.name + ".taking")
            shutil.rmtree(tmp, ignore_errors=True)
            self.snapshot_root.mkdir(parents=True, exist_ok=True)
            shutil.copytree(src, tmp, symlinks=True)
            tmp.rename(snap)
        size = sum(f.stat().st_size for f in snap.rglob("*") if f.is_file() and not f.is_symlink())
        created = timestamp_pb2.Timestamp()
        created.FromNanoseconds(int(snap.stat().st_mtime * 1e9) if snap.exists() else time.time_ns())
        return pb.CreateSnapshotResponse(snapshot=pb.Snapshot(
            snapshot_id=request.name, source_volume_id=request.source_volume_id, size_bytes=size,
            creation_time=created, ready_to_use=True))

    def DeleteSnapshot(self, request, context):
        self.calls.append("DeleteSnapshot")
        snap = self._snapshot_dir(request.snapshot_id, context)
        shutil.rmtree(snap, ignore_errors=True)  # idempotent: a missing snapshot is already deleted
        return pb.DeleteSnapshotResponse()

    def DeleteVolume(self, request, context):
        self.calls.append("DeleteVolume")
        d = self._volume_dir(request.volume_id, context)
        if d.exists():
            users = published_at(d)
            if users:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                              f"volume {request.volume_id} is still mounted at {', '.join(users)}")
            shutil.rmtree(d)
        return pb.DeleteVolumeResponse()

    # --- Node -------------------------------------------------------------
    def NodeGetCapabilities(self, request, context):
        self.calls.append("NodeGetCapabilities")
        return pb.NodeGetCapabilitiesResponse()  # no staging: publish binds straight from the volume

    def NodeGetInfo(self, request, context):
        self.calls.append("NodeGetInfo")
        return pb.NodeGetInfoResponse(node_id=self.node_id, max_volumes_per_node=0)

    def NodeStageVolume(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "hostpath does not stage volumes")

    def NodeUnstageVolume(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "hostpath does not stage volumes")

    def NodePublishVolume(self, request, context):
        self.calls.append("NodePublishVolume")
        if not request.target_path:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "NodePublishVolume needs a target_path")
        src = self._volume_dir(request.volume_id, context)
        if not src.is_dir():
            context.abort(grpc.StatusCode.NOT_FOUND, f"volume {request.volume_id} does not exist under {self.root}")
        target = Path(request.target_path)
        if is_mounted(target):
            return pb.NodePublishVolumeResponse()  # already published: idempotent
        target.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["mount", "--bind", str(src), str(target)], capture_output=True, text=True)
        if r.returncode != 0:
            context.abort(grpc.StatusCode.INTERNAL, f"bind mount {src} -> {target} failed: {r.stderr.strip()}")
        if request.readonly:
            r = subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], capture_output=True, text=True)
            if r.returncode != 0:
                subprocess.run(["umount", str(target)], capture_output=True)
                context.abort(grpc.StatusCode.INTERNAL, f"read-only remount of {target} failed: {r.stderr.strip()}")
        return pb.NodePublishVolumeResponse()

    def NodeUnpublishVolume(self, request, context):
        self.calls.append("NodeUnpublishVolume")
        target = Path(request.target_path)
        if is_mounted(target):
            r = subprocess.run(["umount", str(target)], capture_output=True, text=True)
            if r.returncode != 0:
                context.abort(grpc.StatusCode.INTERNAL, f"umount {target} failed: {r.stderr.strip()}")
        if target.is_dir():
            try:
                target.rmdir()
            except OSError:
                pass
        return pb.NodeUnpublishVolumeResponse()


class CSIDriverServer:
    """The driver on its socket. ``stop()`` removes the socket; volumes stay (they are the data)."""

    def __init__(self, socket_path: str | os.PathLike, root: str | os.PathLike | None = None,
                 node_id: str = "labkit-node"):
        self.socket_path = str(socket_path)
        self.driver = HostPathDriver(root or paths.data_dir() / "csi" / "hostpath", node_id)
        Path(self.socket_path).parent.mkdir(parents=True, exist_ok=True)
        Path(self.socket_path).unlink(missing_ok=True)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        pb_grpc.add_IdentityServicer_to_server(self.driver, self._server)
        pb_grpc.add_ControllerServicer_to_server(self.driver, self._server)
        pb_grpc.add_NodeServicer_to_server(self.driver, self._server)
        self._server.add_insecure_port(f"unix:{self.socket_path}")

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self) -> CSIDriverServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(0.2).wait()
        Path(self.socket_path).unlink(missing_ok=True)

    def __enter__(self) -> CSIDriverServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m labkit.node.csi.driver", description=__doc__.splitlines()[0])
    ap.add_argument("--socket", required=True)
    ap.add_argument("--root", default=None, help="where volumes live (default: <labkit data>/csi/hostpath)")
    ap.add_argument("--node-id", default=os.uname().nodename)
    a = ap.parse_args(argv)
    server = CSIDriverServer(a.socket, a.root, a.node_id).start()
    print(f"CSI driver {DRIVER_NAME}: root={server.driver.root} socket={a.socket}", flush=True)
    wait_for_termination()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
