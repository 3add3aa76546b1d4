"""Lab 43's exercises: a scheduler of your own beside the default one, and a bind made by hand."""

from __future__ import annotations

import asyncio
import time

from labkit.practice import Exercise, Target, Verdict


def _pod(name: str, scheduler: str) -> dict:
    return {"metadata": {"name": name}, "spec": {
        "schedulerName": scheduler, "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "app", "image": "busybox", "command": ["sleep", "3600"]}]}}


def _scheduled_by(t: Target, name: str) -> list[str]:
    return [e.source.component for e in t.core.list_namespaced_event(t.namespace).items
            if e.reason == "Scheduled" and e.involved_object.name == name and e.source]


def _verify_own(t: Target) -> Verdict:
    pod = t.pod("mine")
    if pod is None:
        return Verdict.not_yet(f"there is no pod 'mine' in namespace {t.namespace!r} yet")
    if pod.spec.scheduler_name != "my-scheduler":
        return Verdict.not_yet(f"mine names scheduler {pod.spec.scheduler_name!r}; it must name 'my-scheduler'")
    if not pod.spec.node_name:
        return Verdict.not_yet("mine is waiting for a scheduler called my-scheduler: start one "
                               "(python -m labkit.controlplane.scheduler --scheduler-name my-scheduler)")
    by = _scheduled_by(t, "mine")
    if "my-scheduler" not in by:
        return Verdict.not_yet(f"mine is on {pod.spec.node_name}, but no Scheduled Event from my-scheduler "
                               f"says so (Scheduled by: {by or 'nobody'})")
    return Verdict.ok(f"my-scheduler placed mine on {pod.spec.node_name}")


def _solve_own(t: Target) -> None:
    from labkit.client import Client
    from labkit.controlplane.scheduler.scheduler import Scheduler

    t.core.create_namespaced_pod(t.namespace, _pod("mine", "my-scheduler"))

    async def run_until_placed() -> None:
        cl = Client(t.kubeconfig)
        s = Scheduler(cl, "my-scheduler")
        task = asyncio.create_task(s.run())
        try:
            end = time.monotonic() + 30
            while "my-scheduler" not in await asyncio.to_thread(_scheduled_by, t, "mine"):
                if time.monotonic() > end:
                    raise TimeoutError("my-scheduler did not place mine")
                await asyncio.sleep(0.2)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await cl.close()

    asyncio.run(run_until_placed())


def _verify_by_hand(t: Target) -> Verdict:
    pod = t.pod("by-hand")
    if pod is None:
        return Verdict.not_yet(f"there is no pod 'by-hand' in namespace {t.namespace!r} yet")
    if pod.spec.scheduler_name in (None, "default-scheduler"):
        return Verdict.not_yet("by-hand names the default scheduler, which would place it for you: give it "
                               "schedulerName: nobody")
    if not pod.spec.node_name:
        return Verdict.not_yet("by-hand has no node yet: post a Binding to pods/by-hand/binding")
    by = _scheduled_by(t, "by-hand")
    if by:
        return Verdict.not_yet(f"a scheduler placed by-hand ({', '.join(by)}); bind it yourself")
    return Verdict.ok(f"you bound by-hand to {pod.spec.node_name}; a second Binding would get 409 Conflict")


def _solve_by_hand(t: Target) -> None:
    from kubernetes import client

    t.core.create_namespaced_pod(t.namespace, _pod("by-hand", "nobody"))
    node = t.core.list_node().items[0].metadata.name
    body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "by-hand"},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
    t.core.create_namespaced_pod_binding("by-hand", t.namespace, body, _preload_content=False)
    try:
        t.core.create_namespaced_pod_binding("by-hand", t.namespace, body, _preload_content=False)
    except client.ApiException as exc:
        if exc.status != 409:
            raise


EXERCISES = [
    Exercise(
        id="43.1", title="A scheduler of your own",
        statement="""Create a pod named `mine` (image `busybox`, command `sleep 3600`) with
`schedulerName: my-scheduler`. The cluster's scheduler leaves it alone. Then run labkit's scheduler
under that name beside the default one, in a terminal:
`python -m labkit.controlplane.scheduler --kubeconfig KUBECONFIG --scheduler-name my-scheduler`,
and watch it place the pod (`kubectl get events`). Stop it with Ctrl-C when `mine` is bound.""",
        verify=_verify_own, solution=_solve_own,
        solution_text="""A pod with `spec.schedulerName: my-scheduler`; then the command above. Its Scheduled Event
comes from `my-scheduler`.""",
        concept="several schedulers, chosen per pod", difficulty="easy", cluster={"nodes": 2}),
    Exercise(
        id="43.2", title="Be the scheduler: bind a pod by hand",
        statement="""Create a pod named `by-hand` (image `busybox`, command `sleep 3600`) with
`schedulerName: nobody`, so that no scheduler takes it. Then do the scheduler's commit yourself:
POST a `Binding` (target: a node) to the pod's `binding` subresource, for example with the Python
client's `create_namespaced_pod_binding(..., _preload_content=False)`. Post it a second time and
read the answer: that is the conflict an optimistic scheduler gets when another was faster.""",
        verify=_verify_by_hand, solution=_solve_by_hand,
        solution_text="""`core.create_namespaced_pod_binding("by-hand", NS, {"apiVersion": "v1", "kind": "Binding",
"metadata": {"name": "by-hand"}, "target": {"apiVersion": "v1", "kind": "Node", "name": NODE}},
_preload_content=False)`; the second call raises ApiException 409: the pod is already assigned.""",
        concept="the bind as a conditional write", difficulty="medium", cluster={"nodes": 2}),
]
