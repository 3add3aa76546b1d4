"""Writes that race with another writer (a kubelet or a controller posting status) still land, as
GuaranteedUpdate makes them in kube-apiserver: a user sees 409 only for a resourceVersion or
precondition that really failed."""

from __future__ import annotations

import json

import pytest

from labkit.controlplane.apiserver.errors import StatusError
from labkit.controlplane.apiserver.patch import merge_patch
from labkit.controlplane.apiserver.registry import Registry
from labkit.controlplane.apiserver.resources import BY_PLURAL
from labkit.controlplane.store import open_store

PODS = BY_PLURAL["pods"]


def bound_pod(reg: Registry, name: str) -> dict:
    reg.create(BY_PLURAL["namespaces"], None, {"metadata": {"name": "default"}})
    obj, _ = reg.create(PODS, "default", {"metadata": {"name": name}, "spec": {
        "nodeName": "node-1", "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "c", "image": "busybox"}]}})
    return obj


def racing(reg: Registry, times: int, rt=PODS, name: str = "web") -> None:
    """Let a status write land between a write's read and its compare-and-swap, ``times`` times."""
    real = reg.store.update
    left = [times]

    def update(key, value, rev):
        if left[0] > 0 and key.endswith("/" + name):
            left[0] -= 1
            cur = reg.get(rt, "default", name)
            cur.setdefault("status", {})["phase"] = f"Running{left[0]}"
            real(key, json.dumps(cur).encode(), rev)  # the other writer wins
        return real(key, value, rev)
    reg.store.update = update  # type: ignore[method-assign]


@pytest.mark.parametrize("grace", [None, 0])
def test_delete_retries_on_the_fresh_object_when_another_write_wins(grace):
    reg = Registry(open_store("memory"))
    bound_pod(reg, "web")
    racing(reg, 3)
    opts = {} if grace is None else {"gracePeriodSeconds": grace}
    obj, _, gone = reg.delete(PODS, "default", "web", opts)
    if grace == 0:
        assert gone and reg.store.get("/registry/pods/default/web") is None
    else:
        assert not gone and obj["metadata"]["deletionTimestamp"]
        assert reg.get(PODS, "default", "web")["status"]["phase"] == "Running0", "the other write is kept"


def test_a_failed_precondition_is_still_a_conflict():
    reg = Registry(open_store("memory"))
    bound_pod(reg, "web")
    with pytest.raises(StatusError) as e:
        reg.delete(PODS, "default", "web", {"preconditions": {"uid": "not-this-one"}})
    assert e.value.code == 409 and "Precondition failed" in e.value.message


def test_a_patch_without_a_resource_version_lands_on_the_fresh_object():
    # kubectl scale / patch while the controller-manager writes the object's status
    reg = Registry(open_store("memory"))
    bound_pod(reg, "web")
    racing(reg, 3)
    obj, _ = reg.patch(PODS, "default", "web", lambda cur: merge_patch(cur, {"metadata": {"labels": {"x": "1"}}}))
    assert obj["metadata"]["labels"] == {"x": "1"}
    assert reg.get(PODS, "default", "web")["status"]["phase"] == "Running0", "the other write is kept"


def test_a_patch_that_names_a_resource_version_gets_409_when_the_object_moved_on():
    reg = Registry(open_store("memory"))
    rv = bound_pod(reg, "web")["metadata"]["resourceVersion"]
    racing(reg, 1)
    with pytest.raises(StatusError) as e:
        reg.patch(PODS, "default", "web", lambda cur: merge_patch(cur, {"metadata": {
            "resourceVersion": rv, "labels": {"x": "1"}}}))
    assert e.value.code == 409
    assert "labels" not in reg.get(PODS, "default", "web")["metadata"], "nothing of the patch landed"
