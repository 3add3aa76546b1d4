"""Repeated identical events become one Event with a count, as client-go's EventCorrelator makes them.

labkit's EventRecorder (what the kubelet, scheduler and controllers record with) against an
apiserver alone; then what kubectl 1.33 prints from the aggregated fields.
"""

from __future__ import annotations

import asyncio
import subprocess

import pytest
from kubernetes import client
from support.apiserver import kubeconfig, kubectls, pod

from labkit.client.events import EventRecorder
from labkit.client.rest import Client


def record(api_url: str, cfg_path, pod_obj: dict, messages: list[str], pause: float = 0.0,
           together: bool = False) -> None:
    """Record one FailedMount event per message, as a kubelet on node-1 would."""
    kubeconfig(cfg_path, api_url)

    async def go() -> None:
        c = Client(str(cfg_path))
        try:
            rec = EventRecorder(c, "kubelet", host="node-1")
            if together:  # fire and forget, all at once: they must still count into one Event
                for m in messages:
                    rec.event(pod_obj, "Warning", "FailedMount", m)
                await rec.flush()
                return
            for i, m in enumerate(messages):
                if pause and i == len(messages) - 1:
                    await asyncio.sleep(pause)  # so the last one is seen a second later than the first
                await rec.emit(pod_obj, "Warning", "FailedMount", m)
        finally:
            await c.close()
    asyncio.run(go())


@pytest.fixture()
def victim(kc, ns) -> dict:
    return client.ApiClient().sanitize_for_serialization(client.CoreV1Api(kc).create_namespaced_pod(ns, pod("mnt")))


def events_of(kc, ns: str) -> list:
    return client.CoreV1Api(kc).list_namespaced_event(ns).items


MSG = 'MountVolume.SetUp failed for volume "data" : configmap "settings" not found'


def test_identical_events_counted_in_one(api, kc, ns, victim, tmp_path):
    record(api.url, tmp_path / "kc", victim, [MSG] * 8, pause=1.1)
    evs = events_of(kc, ns)
    assert len(evs) == 1
    ev = evs[0]
    assert ev.count == 8 and ev.reason == "FailedMount" and ev.message == MSG
    assert ev.source.component == "kubelet" and ev.source.host == "node-1"
    assert ev.last_timestamp > ev.first_timestamp  # the last one came a second later
    assert ev.involved_object.name == "mnt"


def test_different_messages_stay_apart_and_concurrent_ones_count(api, kc, ns, victim, tmp_path):
    record(api.url, tmp_path / "kc", victim, ["first reason", "second reason", "first reason"])
    counts = sorted((e.message, e.count) for e in events_of(kc, ns))
    assert counts == [("first reason", 2), ("second reason", 1)]
    record(api.url, tmp_path / "kc2", victim, ["burst"] * 5, together=True)
    assert [e.count for e in events_of(kc, ns) if e.message == "burst"] == [5]


@pytest.mark.parametrize("binary", kubectls(("1.33",)))
def test_kubectl_shows_the_count(api, ns, victim, tmp_path, binary):
    record(api.url, tmp_path / "kc", victim, [MSG] * 8)
    cfg = tmp_path / "kc"

    def kubectl(*args: str) -> str:
        return subprocess.run([binary, "--kubeconfig", str(cfg), "-n", ns, *args], capture_output=True, text=True,
                              timeout=60, check=True).stdout
    rows = [line for line in kubectl("get", "events").splitlines()[1:] if line.strip()]
    assert len(rows) == 1 and "FailedMount" in rows[0]
    wide = kubectl("get", "events", "-o", "wide").splitlines()
    header = wide[0].split()
    assert "COUNT" in header
    assert " 8 " in wide[1]
    assert "(x8 over " in kubectl("events")  # kubectl events and describe write "(xN over T)"
    assert "(x8 over " in kubectl("describe", "pod", "mnt")
