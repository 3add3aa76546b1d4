"""The table of resources this apiserver serves.

Adding a resource is one :class:`ResourceType` entry: its group/version/kind, whether it lives in
a namespace, its short names and subresources, and optional defaulting, validation and field
selector hooks. Discovery, OpenAPI, routing and storage keys are all derived from this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from . import autoscaling, ingress, limitranger, priority, resourcequota, snapshots
from . import validation as v
from . import workloads as w
from .crddefinition import default_crd, validate_crd

Validator = Callable[[dict, "dict | None"], list]
Getter = Callable[[dict], str]

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
COMMON_TOP = {"apiVersion", "kind", "metadata"}
META_FIELDS = {"name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
               "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
               "annotations", "ownerReferences", "finalizers", "managedFields"}


def _path(*parts: str) -> Getter:
    def get(obj: dict) -> str:
        cur = obj
        for p in parts:
            cur = cur.get(p) if isinstance(cur, dict) else None
            if cur is None:
                return ""
        return str(cur) if not isinstance(cur, bool) else str(cur).lower()
    return get


BASE_FIELDS: dict[str, Getter] = {"metadata.name": _path("metadata", "name"),
                                  "metadata.namespace": _path("metadata", "namespace")}


@dataclass
class ResourceType:
    """Everything the server needs to know about one served resource."""
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    defaulter: Callable[[dict], None] | None = None
    validator: Validator | None = None
    fields: dict[str, Getter] = field(default_factory=dict)
    top_fields: frozenset[str] = frozenset({"spec", "status"})
    has_generation: bool = True  # bump metadata.generation when spec changes
    reset_status_on_create: bool = False
    categories: tuple[str, ...] = ()
    # custom resources (served from a CustomResourceDefinition): their own singular name, their
    # openAPIV3Schema, and the store segment "<plural>.<group>" (two groups may share a plural)
    singular_name: str = ""
    openapi_schema: dict | None = None
    storage: str = ""
    custom: bool = False

    @property
    def singular(self) -> str:
        return self.singular_name or self.kind.lower()

    @property
    def segment(self) -> str:
        """The store key's resource segment: the plural, or "<plural>.<group>" for a custom resource."""
        return self.storage or self.plural

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def field_getters(self) -> dict[str, Getter]:
        return {**BASE_FIELDS, **self.fields}

    def key_prefix(self, namespace: str | None = None) -> str:
        """The store prefix of the resource in one namespace (or all of them)."""
        if self.namespaced and namespace:
            return f"/registry/{self.segment}/{namespace}/"
        return f"/registry/{self.segment}/"

    def key(self, namespace: str | None, name: str) -> str:
        """The store key of one object: /registry/<resource>[/<namespace>]/<name>."""
        if self.namespaced:
            return f"/registry/{self.segment}/{namespace}/{name}"
        return f"/registry/{self.segment}/{name}"


_POD_FIELDS = {"spec.nodeName": _path("spec", "nodeName"), "spec.schedulerName": _path("spec", "schedulerName"),
               "spec.restartPolicy": _path("spec", "restartPolicy"),
               "spec.serviceAccountName": _path("spec", "serviceAccountName"),
               "status.phase": _path("status", "phase"), "status.podIP": _path("status", "podIP"),
               "status.nominatedNodeName": _path("status", "nominatedNodeName")}
_EVENT_FIELDS = {f"involvedObject.{f}": _path("involvedObject", f)
                 for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")}
_EVENT_FIELDS.update({"reason": _path("reason"), "source": _path("source", "component"), "type": _path("type"),
                      "reportingComponent": _path("reportingComponent")})

RESOURCES: list[ResourceType] = [
    ResourceType("", "v1", "namespaces", "Namespace", namespaced=False, short_names=("ns",),
                 subresources=("status",), defaulter=v.default_namespace, has_generation=False,
                 fields={"status.phase": _path("status", "phase")}),
    ResourceType("", "v1", "pods", "Pod", short_names=("po",), subresources=("status", "binding", "log", "eviction", "exec", "attach", "portforward"),
                 defaulter=v.default_pod, validator=v.validate_pod, fields=_POD_FIELDS,
                 reset_status_on_create=True, categories=("all",)),
    ResourceType("", "v1", "nodes", "Node", namespaced=False, short_names=("no",), subresources=("status",),
                 fields={"spec.unschedulable": _path("spec", "unschedulable")}, has_generation=False),
    ResourceType("", "v1", "events", "Event", short_names=("ev",), fields=_EVENT_FIELDS, has_generation=False,
                 top_fields=frozenset({"involvedObject", "reason", "message", "source", "firstTimestamp",
                                       "lastTimestamp", "count", "type", "eventTime", "series", "action",
                                       "related", "reportingComponent", "reportingInstance"})),
    ResourceType("", "v1", "services", "Service", short_names=("svc",), subresources=("status",),
                 defaulter=v.default_service, validator=v.validate_service, categories=("all",),
                 fields={"spec.clusterIP": _path("spec", "clusterIP"), "spec.type": _path("spec", "type")}),
    ResourceType("", "v1", "endpoints", "Endpoints", short_names=("ep",), has_generation=False,
                 top_fields=frozenset({"subsets"})),
    ResourceType("", "v1", "configmaps", "ConfigMap", short_names=("cm",), validator=v.validate_configmap,
                 has_generation=False, top_fields=frozenset({"data", "binaryData", "immutable"})),
    ResourceType("", "v1", "secrets", "Secret", defaulter=v.default_secret, validator=v.validate_secret,
                 has_generation=False, fields={"type": _path("type")},
                 top_fields=frozenset({"data", "stringData", "type", "immutable"})),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",), has_generation=False,
                 top_fields=frozenset({"secrets", "imagePullSecrets", "automountServiceAccountToken"})),
    ResourceType("", "v1", "persistentvolumes", "PersistentVolume", namespaced=False, short_names=("pv",),
                 subresources=("status",), defaulter=v.default_pv, validator=v.validate_pv, has_generation=False,
                 fields={"spec.storageClassName": _path("spec", "storageClassName")}),
    ResourceType("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short_names=("pvc",),
                 subresources=("status",), defaulter=v.default_pvc, validator=v.validate_pvc, has_generation=False),
    ResourceType("apps", "v1", "deployments", "Deployment", short_names=("deploy",),
                 subresources=("status", "scale"), defaulter=v.default_deployment,
                 validator=v.validate_deployment, reset_status_on_create=True, categories=("all",)),
    ResourceType("apps", "v1", "replicasets", "ReplicaSet", short_names=("rs",),
                 subresources=("status", "scale"), defaulter=v.default_replicaset,
                 validator=v.validate_replicaset, reset_status_on_create=True, categories=("all",),
                 fields={"status.replicas": _path("status", "replicas")}),
    ResourceType("apps", "v1", "daemonsets", "DaemonSet", short_names=("ds",), subresources=("status",),
                 defaulter=w.default_daemonset, validator=w.validate_daemonset, reset_status_on_create=True,
                 categories=("all",)),
    ResourceType("apps", "v1", "statefulsets", "StatefulSet", short_names=("sts",), subresources=("status", "scale"),
                 defaulter=w.default_statefulset, validator=w.validate_statefulset, reset_status_on_create=True,
                 categories=("all",)),
    ResourceType("batch", "v1", "jobs", "Job", subresources=("status",), defaulter=w.default_job,
                 validator=w.validate_job, reset_status_on_create=True, categories=("all",),
                 fields={"status.successful": _path("status", "succeeded")}),
    ResourceType("batch", "v1", "cronjobs", "CronJob", short_names=("cj",), subresources=("status",),
                 defaulter=w.default_cronjob, validator=w.validate_cronjob, reset_status_on_create=True,
                 categories=("all",)),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", has_generation=False),
    ResourceType("storage.k8s.io", "v1", "storageclasses", "StorageClass", namespaced=False, short_names=("sc",),
                 defaulter=v.default_storageclass, has_generation=False,
                 top_fields=frozenset({"provisioner", "parameters", "reclaimPolicy", "mountOptions",
                                       "allowVolumeExpansion", "volumeBindingMode", "allowedTopologies"})),
    # written by the node side when a CSI driver registers, read by the PV binder to find a provisioner
    ResourceType("storage.k8s.io", "v1", "csidrivers", "CSIDriver", namespaced=False, top_fields=frozenset({"spec"})),
    ResourceType("storage.k8s.io", "v1", "csinodes", "CSINode", namespaced=False, top_fields=frozenset({"spec"})),
]

# API extensions and scheduling (issue 10): CRDs serve new kinds at runtime (see customresources.py);
# PriorityClasses feed the Priority admission step (see priority.py)
RESOURCES += [
    ResourceType("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
                 namespaced=False, short_names=("crd", "crds"), subresources=("status",),
                 categories=("api-extensions",), defaulter=default_crd, validator=validate_crd),
    ResourceType("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", namespaced=False,
                 short_names=("pc",), defaulter=priority.default_priorityclass,
                 validator=priority.validate_priorityclass,
                 has_generation=False,
                 top_fields=frozenset({"value", "globalDefault", "description", "preemptionPolicy"})),
]

# Quota and limits per namespace (issues 12 and 13): admission reads them (resourcequota.py,
# limitranger.py); the quota controller keeps a ResourceQuota's status
RESOURCES += [
    ResourceType("", "v1", "resourcequotas", "ResourceQuota", short_names=("quota",), subresources=("status",),
                 defaulter=resourcequota.default_resourcequota, validator=resourcequota.validate_resourcequota,
                 has_generation=False, reset_status_on_create=True),
    ResourceType("", "v1", "limitranges", "LimitRange", short_names=("limits",),
                 defaulter=limitranger.default_limitrange, validator=limitranger.validate_limitrange,
                 has_generation=False, top_fields=frozenset({"spec"})),
]

# The routing gateway (issue 14): Ingresses name a class; an ingress controller of that class routes
# (labkit's: labkit/ingress/) and writes status.loadBalancer
RESOURCES += [
    ResourceType("networking.k8s.io", "v1", "ingresses", "Ingress", short_names=("ing",), subresources=("status",),
                 defaulter=ingress.default_ingress, validator=ingress.validate_ingress),
    ResourceType("networking.k8s.io", "v1", "ingressclasses", "IngressClass", namespaced=False,
                 defaulter=ingress.default_ingressclass, validator=ingress.validate_ingressclass,
                 top_fields=frozenset({"spec"})),
    # written by the endpoints controller beside each Endpoints object; kubectl 1.33's describe reads them
    ResourceType("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", has_generation=False,
                 top_fields=frozenset({"addressType", "endpoints", "ports"})),
]

# Authorization (issue 12): RBAC objects; the authorizer (auth/rbac.py) reads them from the watch cache
from .auth import rbacobjects as rbac  # noqa: E402

RESOURCES += [
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role", validator=rbac.validate_role,
                 has_generation=False, top_fields=frozenset({"rules"})),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding",
                 defaulter=rbac.default_binding, validator=rbac.validate_role_binding, has_generation=False,
                 top_fields=frozenset({"subjects", "roleRef"})),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False,
                 validator=rbac.validate_cluster_role, has_generation=False,
                 top_fields=frozenset({"rules", "aggregationRule"})),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False,
                 defaulter=rbac.default_binding, validator=rbac.validate_cluster_role_binding,
                 has_generation=False, top_fields=frozenset({"subjects", "roleRef"})),
]

# Horizontal scaling and its metrics (issue 14): HorizontalPodAutoscalers are kept as autoscaling/v2
# (autoscaling.V1Routes serves the v1 view); metrics.k8s.io is computed on request (metricsapi.py)
# and never stored: its segments keep its nodes and pods apart from the core ones
RESOURCES += [
    ResourceType("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", short_names=("hpa",),
                 subresources=("status",), defaulter=autoscaling.default_hpa, validator=autoscaling.validate_hpa,
                 categories=("all",)),
    ResourceType("autoscaling", "v1", "horizontalpodautoscalers", "HorizontalPodAutoscaler", short_names=("hpa",),
                 subresources=("status",), storage="horizontalpodautoscalers.v1"),
    ResourceType("metrics.k8s.io", "v1beta1", "nodes", "NodeMetrics", namespaced=False,
                 storage="nodes.metrics.k8s.io", has_generation=False),
    ResourceType("metrics.k8s.io", "v1beta1", "pods", "PodMetrics", storage="pods.metrics.k8s.io",
                 has_generation=False),
]

# Certificate signing requests (issue 12's node join): a kubelet that joins with a bootstrap token asks
# for its node certificate here, as kubeadm's TLS bootstrap does; the class server approves and signs
# (approval goes through /status too: there is no separate /approval subresource here)
RESOURCES += [
    ResourceType("certificates.k8s.io", "v1", "certificatesigningrequests", "CertificateSigningRequest",
                 namespaced=False, short_names=("csr",), subresources=("status",),
                 has_generation=False, reset_status_on_create=True),
]

BY_PATH: dict[tuple[str, str, str], ResourceType] = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_PLURAL: dict[str, ResourceType] = {r.segment: r for r in RESOURCES}


def serve(rts: list[ResourceType]) -> None:
    """Serve these (custom) resources from now on: routes, discovery and OpenAPI read the table."""
    for rt in rts:
        withdraw_path(rt.group, rt.version, rt.plural)
        RESOURCES.append(rt)
        BY_PATH[(rt.group, rt.version, rt.plural)] = rt
        BY_PLURAL[rt.segment] = rt
    _group_versions.clear()


def withdraw_path(group: str, version: str, plural: str) -> None:
    """Stop serving one custom resource version (its CRD changed or went)."""
    old = BY_PATH.get((group, version, plural))
    if old is None or not old.custom:
        return
    del BY_PATH[(group, version, plural)]
    RESOURCES.remove(old)
    _group_versions.clear()
    if not any(r.segment == old.segment for r in RESOURCES):
        BY_PLURAL.pop(old.segment, None)


_group_versions: dict[str, list[str]] = {}  # computed on first use after the table changed


def group_versions() -> dict[str, list[str]]:
    """group -> versions, in table order (core group is ""); custom groups come and go with their CRDs."""
    if not _group_versions:
        out: dict[str, list[str]] = {}
        for r in RESOURCES:
            vs = out.setdefault(r.group, [])
            if r.version not in vs:
                vs.append(r.version)
        _group_versions.update(out)
    return _group_versions


def in_group_version(group: str, version: str) -> list[ResourceType]:
    """The resources of one group/version, for its discovery and OpenAPI documents."""
    return [r for r in RESOURCES if r.group == group and r.version == version]

# Backup (issue 14): CSI snapshots; the snapshot controller calls the driver's CreateSnapshot
# (see snapshots.py and controllers/volumesnapshot.py)
RESOURCES += [
    ResourceType("snapshot.storage.k8s.io", "v1", "volumesnapshotclasses", "VolumeSnapshotClass", namespaced=False,
                 short_names=("vsclass", "vsclasses"), validator=snapshots.validate_volumesnapshotclass,
                 has_generation=False, top_fields=frozenset({"driver", "parameters", "deletionPolicy"})),
    ResourceType("snapshot.storage.k8s.io", "v1", "volumesnapshots", "VolumeSnapshot", short_names=("vs",),
                 subresources=("status",), validator=snapshots.validate_volumesnapshot),
    ResourceType("snapshot.storage.k8s.io", "v1", "volumesnapshotcontents", "VolumeSnapshotContent",
                 namespaced=False, short_names=("vsc", "vscs"), subresources=("status",),
                 validator=snapshots.validate_volumesnapshotcontent),
]
BY_PATH.update({(r.group, r.version, r.plural): r for r in RESOURCES[-3:]})
BY_PLURAL.update({r.plural: r for r in RESOURCES[-3:]})
