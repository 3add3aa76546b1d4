"""The controller-manager: many controllers in one process, sharing informers (one watch per resource)."""

from __future__ import annotations

import asyncio
import logging

from labkit.client import Client
from labkit.client.events import EventRecorder
from labkit.controlplane.controllers.base import Controller, SharedInformers
from labkit.controlplane.controllers.cronjob import CronJobController
from labkit.controlplane.controllers.daemonset import DaemonSetController
from labkit.controlplane.controllers.deployment import DeploymentController
from labkit.controlplane.controllers.endpoints import EndpointsController
from labkit.controlplane.controllers.garbagecollector import GarbageCollector
from labkit.controlplane.controllers.job import JobController, TTLAfterFinishedController
from labkit.controlplane.controllers.nodeipam import NodeIpamController
from labkit.controlplane.controllers.nodelifecycle import NodeLifecycleController
from labkit.controlplane.controllers.podautoscaler import HorizontalPodAutoscalerController
from labkit.controlplane.controllers.pv_binder import PersistentVolumeBinder
from labkit.controlplane.controllers.replicaset import ReplicaSetController
from labkit.controlplane.controllers.resourcequota import ResourceQuotaController
from labkit.controlplane.controllers.serviceaccount import ServiceAccountsController
from labkit.controlplane.controllers.statefulset import StatefulSetController
from labkit.controlplane.controllers.volumesnapshot import VolumeSnapshotController

log = logging.getLogger(__name__)

ALL = ("replicaset", "deployment", "nodelifecycle", "garbagecollector", "nodeipam", "endpoints", "pvbinder")
ALL += ("job", "ttlafterfinished", "cronjob", "daemonset", "statefulset")  # the batch and apps workloads
ALL += ("resourcequota",)
ALL += ("horizontalpodautoscaling",)
ALL += ("serviceaccount",)
ALL += ("volumesnapshot",)  # CSI snapshots (backup)


class ControllerManager:
    def __init__(self, client: Client, controllers: tuple[str, ...] = ALL, *, node_grace: float = 40.0,
                 eviction_cap: float | None = None, cluster_cidr: str = "10.244.0.0/16",
                 hpa_sync_period: float = 15.0, hpa_downscale_stabilization: float = 300.0):
        self.client = client
        self.informers = SharedInformers(client)
        rec = lambda name: EventRecorder(client, name)  # noqa: E731
        self.controllers: list[Controller] = []
        inf = self.informers
        if "replicaset" in controllers:
            self.controllers.append(ReplicaSetController(client, inf, rec("replicaset-controller")))
        if "deployment" in controllers:
            self.controllers.append(DeploymentController(client, inf, rec("deployment-controller")))
        if "nodelifecycle" in controllers:
            self.controllers.append(NodeLifecycleController(client, inf, rec("node-controller"), grace=node_grace,
                                                            eviction_cap=eviction_cap))
        if "garbagecollector" in controllers:
            self.controllers.append(GarbageCollector(client, inf, rec("garbage-collector-controller")))
        if "nodeipam" in controllers:
            self.controllers.append(NodeIpamController(client, inf, rec("node-ipam-controller"),
                                                       cluster_cidr=cluster_cidr))
        if "endpoints" in controllers:
            self.controllers.append(EndpointsController(client, inf, rec("endpoint-controller")))
        if "job" in controllers:
            self.controllers.append(JobController(client, inf, rec("job-controller")))
        if "ttlafterfinished" in controllers:
            self.controllers.append(TTLAfterFinishedController(client, inf, rec("ttl-after-finished-controller")))
        if "cronjob" in controllers:
            self.controllers.append(CronJobController(client, inf, rec("cronjob-controller")))
        if "daemonset" in controllers:
            self.controllers.append(DaemonSetController(client, inf, rec("daemonset-controller")))
        if "statefulset" in controllers:
            self.controllers.append(StatefulSetController(client, inf, rec("statefulset-controller")))
        if "resourcequota" in controllers:
            self.controllers.append(ResourceQuotaController(client, inf, rec("resourcequota-controller")))
        if "horizontalpodautoscaling" in controllers:
            self.controllers.append(HorizontalPodAutoscalerController(
                client, inf, rec("horizontal-pod-autoscaler"), sync_period=hpa_sync_period,
                downscale_stabilization=hpa_downscale_stabilization))
        if "serviceaccount" in controllers:
            self.controllers.append(ServiceAccountsController(client, inf, rec("serviceaccount-controller")))
        if "volumesnapshot" in controllers:
            self.controllers.append(VolumeSnapshotController(client, inf, rec("snapshot-controller")))
        if "pvbinder" in controllers:
            try:
                self.controllers.append(PersistentVolumeBinder(client, inf, rec("persistentvolume-controller")))
            except Exception:
                log.exception("the PV binder could not start; running without it")

    async def run(self) -> None:
        await self.informers.start()
        log.info("controllers running: %s", ", ".join(c.name for c in self.controllers))
        try:
            await asyncio.gather(*(c.run() for c in self.controllers))
        finally:
            await self.informers.stop()
