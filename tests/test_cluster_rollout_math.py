"""The rolling-update arithmetic and pod-template hashing the Deployment controller relies on."""

from labkit.client.selectors import workload_selects as match_labels
from labkit.controlplane.controllers import rollout
from labkit.controlplane.controllers.replicaset import deletion_rank


def dep(replicas, surge=None, unavailable=None):
    ru = {}
    if surge is not None:
        ru["maxSurge"] = surge
    if unavailable is not None:
        ru["maxUnavailable"] = unavailable
    return {"spec": {"replicas": replicas, "strategy": {"rollingUpdate": ru}}}


def test_surge_rounds_up_and_unavailable_rounds_down_like_kubernetes():
    assert rollout.surge_and_unavailable(dep(10)) == (3, 2)          # defaults 25% / 25%
    assert rollout.surge_and_unavailable(dep(3, 1, 0)) == (1, 0)
    assert rollout.surge_and_unavailable(dep(3, "0%", "0%")) == (0, 1)  # both zero: one may be unavailable
    assert rollout.surge_and_unavailable(dep(4, "50%", "50%")) == (2, 2)


def test_one_step_at_a_time_with_surge_one_and_no_unavailability():
    assert rollout.new_rs_target(replicas=3, surge=1, total_now=3, new_now=0) == 1
    assert rollout.new_rs_target(replicas=3, surge=1, total_now=4, new_now=1) == 1  # at the ceiling: wait
    assert rollout.old_scale_down_budget(replicas=3, unavailable=0, available_now=4) == 1
    assert rollout.old_scale_down_budget(replicas=3, unavailable=0, available_now=3) == 0


def test_template_hash_is_stable_and_ignores_its_own_label():
    t = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    h = rollout.template_hash(t)
    labelled = {"metadata": {"labels": {"app": "web", "pod-template-hash": h}}, "spec": t["spec"]}
    assert rollout.template_hash(labelled) == h
    assert rollout.same_template(t, labelled)
    changed = {"metadata": t["metadata"], "spec": {"containers": [{"name": "c", "image": "busybox:2"}]}}
    assert rollout.template_hash(changed) != h and not rollout.same_template(t, changed)
    assert rollout.template_hash(t, collision_count=1) != h


def test_label_selectors_and_which_pod_goes_first():
    sel = {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]}
    assert match_labels(sel, {"app": "web", "tier": "a"})
    assert not match_labels(sel, {"app": "web", "tier": "b"})
    assert not match_labels({}, {"app": "web"})  # an empty selector selects nothing here
    pending = {"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {}, "status": {"phase": "Pending"}}
    running = {"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"nodeName": "n"},
               "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    assert sorted([running, pending], key=deletion_rank)[0] is pending  # unscheduled pods are deleted first


def test_old_pods_that_are_not_available_go_first_so_a_rollback_from_a_bad_image_finishes():
    # rolled back to 2 healthy replicas; the broken ReplicaSet has 1 pod stuck in ErrImagePull:
    # spec total 3, minimum available 2, so 1 pod may go, and it is the unavailable one
    assert rollout.unhealthy_scale_down([(1, 0)], budget=1) == [1]
    assert rollout.unhealthy_scale_down([(2, 1), (3, 0)], budget=2) == [1, 1]   # oldest first
    assert rollout.unhealthy_scale_down([(2, 2)], budget=5) == [0]              # available pods stay
    assert rollout.old_scale_down_budget(replicas=2, unavailable=0, available_now=2) == 0
