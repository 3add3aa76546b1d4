"""The pod status a kubelet reports while a quick container ends: what `kubectl get pods` then shows."""

from __future__ import annotations

import time
from types import SimpleNamespace

from labkit.node.kubelet.podworker import PodRecord, PodWorker
from labkit.runtime.base import ContainerState, ContainerStatus


def worker(policy: str = "Never") -> PodWorker:
    pod = {"metadata": {"name": "once", "namespace": "default", "uid": "u1"},
           "spec": {"restartPolicy": policy, "containers": [{"name": "c", "image": "busybox"}]}}
    kubelet = SimpleNamespace(runtime_name="native", address="127.0.0.1")
    return PodWorker(kubelet, PodRecord(key="default/once", pod=pod))  # type: ignore[arg-type]


def container(state: ContainerState, exit_code: int | None = None) -> ContainerStatus:
    now = time.time()
    return ContainerStatus(id="c1", sandbox_id="s1", name="c", image="busybox", image_ref="sha256:x", state=state,
                           created_at=now - 1, started_at=now - 0.5, exit_code=exit_code,
                           finished_at=now if state == ContainerState.EXITED else None)


def test_a_container_whose_exit_is_not_recorded_yet_keeps_the_pod_running_not_succeeded():
    # the process is gone but the runtime has not written its exit: the phase must not jump to
    # Succeeded (a terminal phase is never revised) with a container still shown as creating
    w = worker()
    w.rec.current["c"] = container(ContainerState.UNKNOWN)
    st = w.status()
    assert st["phase"] == "Running"
    assert "running" in st["containerStatuses"][0]["state"]

    w.rec.current["c"] = container(ContainerState.EXITED, 0)
    st = w.status()
    assert st["phase"] == "Succeeded"
    assert st["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"


def test_an_earlier_sandbox_failure_does_not_hide_how_a_finished_container_ended():
    w = worker()
    w.rec.waiting["c"] = ("ContainerCreating", "network not ready")  # from a failed first attempt
    w.rec.current["c"] = container(ContainerState.EXITED, 0)
    st = w.status()
    assert st["phase"] == "Succeeded"
    assert st["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0


def test_a_container_that_will_restart_shows_why_it_waits():
    w = worker("Always")
    w.rec.waiting["c"] = ("CrashLoopBackOff", "back-off 2s restarting failed container=c pod=once")
    w.rec.current["c"] = container(ContainerState.EXITED, 2)
    cs = w.status()["containerStatuses"][0]
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["lastState"]["terminated"]["exitCode"] == 2
