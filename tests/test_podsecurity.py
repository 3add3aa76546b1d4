"""Pod Security admission: a namespace labelled baseline or restricted refuses the pods that could
reach the host, with kube-apiserver's "violates PodSecurity" message, and admits ordinary pods."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException


def _ns(kc, level: str) -> str:  # noqa: ANN001
    import uuid

    name = f"psa-{level}-{uuid.uuid4().hex[:5]}"
    client.CoreV1Api(kc).create_namespace({"metadata": {"name": name, "labels": {
        "pod-security.kubernetes.io/enforce": level}}})
    return name


def _pod(name: str, **spec) -> dict:  # noqa: ANN003
    container = {"name": "app", "image": "busybox", **spec.pop("container", {})}
    return {"metadata": {"name": name}, "spec": {"containers": [container], **spec}}


def _refused(kc, ns: str, pod: dict) -> str:  # noqa: ANN001
    with pytest.raises(ApiException) as exc:
        client.CoreV1Api(kc).create_namespaced_pod(ns, pod)
    assert exc.value.status == 403
    return json.loads(exc.value.body)["message"]


def test_baseline_refuses_every_way_to_the_host(kc) -> None:  # noqa: ANN001
    ns = _ns(kc, "baseline")
    assert _refused(kc, ns, _pod("hp", volumes=[{"name": "root", "hostPath": {"path": "/"}}])) == \
        'pods "hp" is forbidden: violates PodSecurity "baseline:latest": hostPath volumes (volume "root")'
    msg = _refused(kc, ns, _pod("pv", container={"securityContext": {"privileged": True}}, hostPID=True))
    assert msg == ('pods "pv" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostPID=true), '
                   'privileged (container "app" must not set securityContext.privileged=true)')
    msg = _refused(kc, ns, _pod("cap", container={"securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}))
    assert 'non-default capabilities (container "app" must not include "SYS_ADMIN" in ' \
           "securityContext.capabilities.add)" in msg
    client.CoreV1Api(kc).create_namespaced_pod(ns, _pod("plain"))  # an ordinary pod is admitted


def test_restricted_asks_for_a_hardened_pod(kc) -> None:  # noqa: ANN001
    ns = _ns(kc, "restricted")
    msg = _refused(kc, ns, _pod("plain"))
    assert msg.startswith('pods "plain" is forbidden: violates PodSecurity "restricted:latest": '
                          'allowPrivilegeEscalation != false (container "app" must set '
                          'securityContext.allowPrivilegeEscalation=false), unrestricted capabilities')
    hardened = _pod("hardened", securityContext={"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                    container={"securityContext": {"allowPrivilegeEscalation": False,
                                                   "capabilities": {"drop": ["ALL"]}}})
    client.CoreV1Api(kc).create_namespaced_pod(ns, hardened)


def test_unlabelled_namespace_is_privileged(kc, ns) -> None:  # noqa: ANN001
    client.CoreV1Api(kc).create_namespaced_pod(ns, _pod("hp", volumes=[{"name": "root", "hostPath": {"path": "/"}}]))
