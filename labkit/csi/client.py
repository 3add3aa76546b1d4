"""A CSI client: what the kubelet and the provisioner send to a driver's socket."""

from __future__ import annotations

import grpc

from labkit.csi import csi_pb2 as pb
from labkit.csi import csi_pb2_grpc as pb_grpc


class CSIError(Exception):
    """A CSI call failed; ``code`` is the gRPC status name (NOT_FOUND, INTERNAL ...)."""

    def __init__(self, method: str, code: str, details: str):
        super().__init__(f"CSI {method}: {code}: {details}")
        self.code = code


def _mount_capability(readonly: bool = False) -> pb.VolumeCapability:
    mode = pb.VolumeCapability.AccessMode.SINGLE_NODE_READER_ONLY if readonly else \
        pb.VolumeCapability.AccessMode.SINGLE_NODE_WRITER
    return pb.VolumeCapability(mount=pb.VolumeCapability.MountVolume(),
                               access_mode=pb.VolumeCapability.AccessMode(mode=mode))


class CSIClient:
    """Identity, Controller and Node calls on one driver socket."""

    def __init__(self, endpoint: str, timeout: float = 30.0):
        target = endpoint.replace("unix://", "unix:") if endpoint.startswith("unix://") else (
            endpoint if endpoint.startswith("unix:") else f"unix:{endpoint}")
        self.endpoint = endpoint
        self.timeout = timeout
        self._ch = grpc.insecure_channel(target)
        self.identity = pb_grpc.IdentityStub(self._ch)
        self.controller = pb_grpc.ControllerStub(self._ch)
        self.node = pb_grpc.NodeStub(self._ch)

    def _call(self, stub, method: str, req):
        try:
            return getattr(stub, method)(req, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise CSIError(method, exc.code().name, exc.details() or "") from None

    def plugin_info(self) -> tuple[str, str]:
        r = self._call(self.identity, "GetPluginInfo", pb.GetPluginInfoRequest())
        return r.name, r.vendor_version

    def probe(self) -> bool:
        r = self._call(self.identity, "Probe", pb.ProbeRequest())
        return (not r.HasField("ready")) or r.ready.value

    def create_volume(self, name: str, size_bytes: int, parameters: dict[str, str] | None = None,
                      from_snapshot: str | None = None) -> pb.Volume:
        """A new volume; ``from_snapshot`` (a snapshot id) starts it with that snapshot's data."""
        req = pb.CreateVolumeRequest(name=name, capacity_range=pb.CapacityRange(required_bytes=size_bytes),
                                     volume_capabilities=[_mount_capability()], parameters=parameters or {})
        if from_snapshot:
            req.volume_content_source.snapshot.snapshot_id = from_snapshot
        return self._call(self.controller, "CreateVolume", req).volume

    def create_snapshot(self, name: str, source_volume_id: str, parameters: dict[str, str] | None = None) -> pb.Snapshot:
        req = pb.CreateSnapshotRequest(name=name, source_volume_id=source_volume_id, parameters=parameters or {})
        return self._call(self.controller, "CreateSnapshot", req).snapshot

    def delete_snapshot(self, snapshot_id: str) -> None:
        self._call(self.controller, "DeleteSnapshot", pb.DeleteSnapshotRequest(snapshot_id=snapshot_id))

    def delete_volume(self, volume_id: str) -> None:
        self._call(self.controller, "DeleteVolume", pb.DeleteVolumeRequest(volume_id=volume_id))

    def node_info(self) -> str:
        return self._call(self.node, "NodeGetInfo", pb.NodeGetInfoRequest()).node_id

    def publish(self, volume_id: str, target_path: str, readonly: bool = False,
                volume_context: dict[str, str] | None = None) -> None:
        req = pb.NodePublishVolumeRequest(volume_id=volume_id, target_path=target_path, readonly=readonly,
                                          volume_capability=_mount_capability(readonly),
                                          volume_context=volume_context or {})
        self._call(self.node, "NodePublishVolume", req)

    def unpublish(self, volume_id: str, target_path: str) -> None:
        self._call(self.node, "NodeUnpublishVolume",
                   pb.NodeUnpublishVolumeRequest(volume_id=volume_id, target_path=target_path))

    def close(self) -> None:
        self._ch.close()


async def call_controller_service(endpoints: list[str], driver: str, method: str, *args):  # noqa: ANN201
    """One Controller-service call for ``driver``, at the next endpoint when one does not answer (a
    node that went away without unregistering leaves its address behind); what the PV binder and the
    snapshot controller both do."""
    import asyncio

    from labkit.client import ApiError

    for i, endpoint in enumerate(endpoints):
        client = CSIClient(endpoint)
        try:
            return await asyncio.to_thread(getattr(client, method), *args)
        except CSIError as exc:
            if exc.code != "UNAVAILABLE" or i == len(endpoints) - 1:
                raise
        finally:
            client.close()
    raise ApiError(503, "ServiceUnavailable", f"no node publishes an endpoint for CSI driver {driver!r}")
