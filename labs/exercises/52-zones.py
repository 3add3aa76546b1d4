"""Lab 52's exercises: spread a Deployment over zones, and read the scheduler's refusal of a spread it cannot meet."""

from __future__ import annotations

from collections import Counter

from labkit.practice import Exercise, Target, Verdict
from labkit.practice.proof import wait_until

ZONE = "topology.kubernetes.io/zone"


def _spread(when: str, key: str = ZONE) -> dict:
    return {"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": when,
            "labelSelector": {"matchLabels": {"app": "spread"}}}


def _verify_spread(t: Target) -> Verdict:
    d = t.deployment("spread")
    if d is None:
        return Verdict.not_yet(f"there is no Deployment 'spread' in namespace {t.namespace!r} yet")
    cs = d.spec.template.spec.topology_spread_constraints or []
    if not any(c.topology_key == ZONE and c.max_skew == 1 and c.when_unsatisfiable == "DoNotSchedule" for c in cs):
        return Verdict.not_yet(f"spread's pod template needs a constraint: maxSkew 1, topologyKey {ZONE}, "
                               "whenUnsatisfiable DoNotSchedule")
    zones = {n.metadata.name: (n.metadata.labels or {}).get(ZONE) for n in t.core.list_node().items}
    pods = [p for p in t.core.list_namespaced_pod(t.namespace, label_selector="app=spread").items
            if p.status.phase == "Running" and not p.metadata.deletion_timestamp]
    if len(pods) < 4:
        return Verdict.not_yet(f"{len(pods)} spread pod(s) Running; run at least 4")
    per = Counter(zones.get(p.spec.node_name) for p in pods)
    if None in per:
        return Verdict.not_yet("a spread pod runs on a node without a zone label: label the nodes with "
                               f"{ZONE} (kubectl label node NAME {ZONE}=x)")
    if len(per) < 2 or max(per.values()) - min(per.values()) > 1:
        return Verdict.not_yet(f"pods per zone: {dict(per)}; they should differ by at most one, over two zones or more")
    return Verdict.ok(f"pods per zone: {dict(sorted(per.items()))}")


def _solve_spread(t: Target) -> None:
    nodes = t.core.list_node().items
    if len({(n.metadata.labels or {}).get(ZONE) for n in nodes} - {None}) < 2:
        for i, n in enumerate(nodes):
            t.core.patch_node(n.metadata.name, {"metadata": {"labels": {ZONE: f"zone-{i % 2}"}}})
    constraint = _spread("DoNotSchedule") | {"nodeTaintsPolicy": "Honor"}  # a zone that is down is left out
    t.apps.create_namespaced_deployment(t.namespace, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "spread"},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "spread"}},
                 "template": {"metadata": {"labels": {"app": "spread"}}, "spec": {
                     "topologySpreadConstraints": [constraint], "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "app", "image": "busybox", "command": ["sleep", "3600"]}]}}}})
    wait_until("4 spread pods running", lambda: len([
        p for p in t.core.list_namespaced_pod(t.namespace, label_selector="app=spread").items
        if p.status.phase == "Running"]) >= 4)


def _verify_refused(t: Target) -> Verdict:
    pod = t.pod("nowhere")
    if pod is None:
        return Verdict.not_yet(f"there is no pod 'nowhere' in namespace {t.namespace!r} yet")
    if pod.spec.node_name:
        return Verdict.not_yet(f"nowhere was placed on {pod.spec.node_name}: its constraint must be one no node "
                               "can meet (a topologyKey that no node has, with DoNotSchedule)")
    cond = next((c for c in pod.status.conditions or [] if c.type == "PodScheduled"), None)
    if cond is None or "topology spread constraints" not in (cond.message or ""):
        return Verdict.not_yet("nowhere is not placed yet, but the scheduler has not said why: wait a second "
                               "and check again (kubectl describe pod nowhere)")
    return Verdict.ok(f"the scheduler refused it: {cond.message}")


def _solve_refused(t: Target) -> None:
    t.core.create_namespaced_pod(t.namespace, {"metadata": {"name": "nowhere", "labels": {"app": "spread"}}, "spec": {
        "topologySpreadConstraints": [_spread("DoNotSchedule", "topology.kubernetes.io/region")],
        "containers": [{"name": "app", "image": "busybox", "command": ["sleep", "3600"]}]}})
    wait_until("the scheduler's verdict on nowhere", lambda: any(
        c.type == "PodScheduled" and c.status == "False" for c in (t.pod("nowhere").status.conditions or [])))


EXERCISES = [
    Exercise(
        id="52.1", title="Spread a Deployment over zones",
        statement=f"""Run a Deployment named `spread` (image `busybox`, command `sleep 3600`, pods labelled
`app: spread`) of at least 4 replicas, with a hard spread constraint over zones: `maxSkew: 1`,
`topologyKey: {ZONE}`, `whenUnsatisfiable: DoNotSchedule`, selecting its own pods. Its Running
pods must cover two zones or more, and no zone may hold more than one pod more than another. If
the nodes have no zone label yet, give them one (`kubectl label node NAME {ZONE}=x`).""",
        verify=_verify_spread, solution=_solve_spread,
        solution_text=f"""Label the nodes if needed (`{ZONE}=zone-0`, `zone-1`, ...), then a Deployment whose pod
template has `topologySpreadConstraints: [{{maxSkew: 1, topologyKey: {ZONE},
whenUnsatisfiable: DoNotSchedule, labelSelector: {{matchLabels: {{app: spread}}}}}}]`. Adding
`nodeTaintsPolicy: Honor` leaves a lost zone's tainted nodes out of the count.""",
        concept="topologySpreadConstraints over zones", difficulty="easy", cluster={"nodes": 2}),
    Exercise(
        id="52.2", title="A spread no node can satisfy",
        statement="""Create a pod named `nowhere` (image `busybox`, command `sleep 3600`) that the scheduler
refuses because of its topology spread constraint: a `DoNotSchedule` constraint over a
`topologyKey` that no node carries, such as `topology.kubernetes.io/region`. Read why with
`kubectl describe pod nowhere`.""",
        verify=_verify_refused, solution=_solve_refused,
        solution_text="""A pod with `topologySpreadConstraints: [{maxSkew: 1, topologyKey: topology.kubernetes.io/region,
whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: spread}}}]`. The scheduler
says `0/N nodes are available: N node(s) didn't match pod topology spread constraints (missing
required label).`""",
        concept="PodTopologySpread as a filter", difficulty="easy", cluster={"nodes": 2}),
]
