"""What a class consists of inside the cluster, made with the teacher's (cluster-admin) credentials.

Per student: a namespace labelled for Pod Security ``enforce`` (``baseline`` refuses hostPath,
privileged and host namespaces: the ways to root on the teacher's machine), a ResourceQuota and a
LimitRange of the student's size, and a RoleBinding of the ``edit`` ClusterRole to the student's
user. For the room: a ClusterRole that reads Nodes, bound to the students' group, so students see
the machines they share and cannot change them.
"""

from __future__ import annotations

from typing import Any

from labkit.classroom import sizes
from labkit.classroom.roster import Student

STUDENTS_GROUP = "labkit:students"
NODE_READER = "labkit:class-node-reader"
CLASS_LABEL = "labkit.dev/class"
STUDENT_LABEL = "labkit.dev/student"
PSA_LABEL = "pod-security.kubernetes.io/enforce"
POD_SECURITY_LEVELS = ("baseline", "restricted")


def _create_or_replace(create: Any, replace: Any, name: str, *args: Any) -> None:
    """Create the object, or replace it when it exists (a second ``class up`` on the same store)."""
    from kubernetes.client.exceptions import ApiException

    try:
        create(*args)
    except ApiException as err:
        if err.status != 409:
            raise
        replace(name, *args)


def room(api_client: Any) -> None:
    """The shared read-only access to Nodes, for every student."""
    from kubernetes import client

    rbac = client.RbacAuthorizationV1Api(api_client)
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": NODE_READER},
            "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": NODE_READER},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NODE_READER},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": STUDENTS_GROUP}]}
    _create_or_replace(rbac.create_cluster_role, rbac.replace_cluster_role, NODE_READER, role)
    _create_or_replace(rbac.create_cluster_role_binding, rbac.replace_cluster_role_binding, NODE_READER, binding)


def student(api_client: Any, class_name: str, s: Student, pod_security: str = "baseline") -> None:
    """One student's fenced namespace: Pod Security label, quota, limits and the ``edit`` binding."""
    from kubernetes import client

    if pod_security not in POD_SECURITY_LEVELS:
        raise ValueError(f"pod security level {pod_security!r}: choose {' or '.join(POD_SECURITY_LEVELS)}")
    core = client.CoreV1Api(api_client)
    rbac = client.RbacAuthorizationV1Api(api_client)
    ns = s.namespace
    namespace = {"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": ns, "labels": {PSA_LABEL: pod_security, CLASS_LABEL: class_name,
                                                     STUDENT_LABEL: s.name}}}
    _create_or_replace(core.create_namespace, core.replace_namespace, ns, namespace)
    _create_or_replace(lambda n, b: core.create_namespaced_limit_range(n, b),
                       lambda name, n, b: core.replace_namespaced_limit_range(name, n, b),
                       "student-defaults", ns, sizes.limit_range())
    _create_or_replace(lambda n, b: core.create_namespaced_resource_quota(n, b),
                       lambda name, n, b: core.replace_namespaced_resource_quota(name, n, b),
                       "student-quota", ns, sizes.resource_quota(sizes.size(s.size)))
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "student-edit", "namespace": ns},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": s.name}]}
    _create_or_replace(lambda n, b: rbac.create_namespaced_role_binding(n, b),
                       lambda name, n, b: rbac.replace_namespaced_role_binding(name, n, b),
                       "student-edit", ns, binding)
