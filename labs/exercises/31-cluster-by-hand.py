"""Track "Bring up a cluster by hand": one exercise per component, each checked on the real cluster.

The learner's cluster lives in the lab's work folder (``cluster/``: ports, process IDs, logs, the
kubeconfig), run by :class:`labkit.practice.buildcluster.HandCluster`. Each verify asks the real
thing: etcd's /health and its keys, the API through the official client, the Events the
scheduler wrote, the CRI server over its socket, the Node the kubelet registered, and a pod's
container as the CRI server reports it. A set-up brings the components before the step up, the
solution starts the step's own, and the clean-up stops them all.
"""

from __future__ import annotations

import shutil

from labkit.practice import Exercise, Target, Verdict
from labkit.practice.buildcluster import HandCluster

DEPLOYMENT, POD = "hello", "hand-made"


def cluster(t: Target) -> HandCluster:
    return HandCluster(t.workdir / "cluster", node=t.name("node"))


def _client(hc: HandCluster):  # noqa: ANN202 - the official client's CoreV1Api
    from kubernetes import client, config

    return client.CoreV1Api(config.new_client_from_config(config_file=hc.kubeconfig))


def _apps(hc: HandCluster):  # noqa: ANN202
    from kubernetes import client, config

    return client.AppsV1Api(config.new_client_from_config(config_file=hc.kubeconfig))


def _busybox(name: str) -> dict:
    return {"metadata": {"name": name, "labels": {"app": name}},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}}


# --------------------------------------------------------------------------- the steps (solutions)
def start_etcd(t: Target) -> None:
    cluster(t).start("etcd")


def start_apiserver(t: Target) -> None:
    cluster(t).start("apiserver")


def start_controller_manager(t: Target) -> None:
    hc = cluster(t)
    hc.start("controller-manager")
    pod = _busybox(DEPLOYMENT)
    _apps(hc).create_namespaced_deployment("default", {
        "metadata": {"name": DEPLOYMENT},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": DEPLOYMENT}}, "template": pod}})


def start_scheduler(t: Target) -> None:
    cluster(t).start("scheduler")


def start_cri(t: Target) -> None:
    cluster(t).start("cri")


def start_kubelet(t: Target) -> None:
    cluster(t).start("kubelet")


def run_a_pod(t: Target) -> None:
    _client(cluster(t)).create_namespaced_pod("default", _busybox(POD))


STEPS = [start_etcd, start_apiserver, start_controller_manager, start_scheduler, start_cri, start_kubelet, run_a_pod]
#: which earlier steps a step's check needs (the CRI server needs no control plane at all)
NEEDS = {1: [], 2: [1], 3: [1, 2], 4: [1, 2, 3], 5: [], 6: [5, 1, 2, 3, 4], 7: [5, 1, 2, 3, 4, 6]}


def _setup(step: int):
    def setup(t: Target) -> None:
        hc = cluster(t)
        if 5 in NEEDS[step]:
            hc.start("cri", wait=False)  # it starts while the control plane does
        for n in NEEDS[step]:
            if n != 5:
                STEPS[n - 1](t)
        if 5 in NEEDS[step]:
            hc.wait("cri")
    return setup


def stop_all(t: Target) -> None:
    """Clean-up: stop every component and remove the cluster's folder (etcd's data too)."""
    hc = cluster(t)
    hc.stop()
    shutil.rmtree(hc.folder, ignore_errors=True)


# --------------------------------------------------------------------------- the checks
def verify_etcd(t: Target) -> Verdict:
    hc = cluster(t)
    try:
        health = hc.etcd_health()
    except OSError as err:
        return Verdict.not_yet(f"etcd does not answer at {hc.etcd_url}/health ({err}): start etcd")
    if str(health.get("health")) != "true":
        return Verdict.not_yet(f"etcd answers but is not healthy: {health}")
    return Verdict.ok(f"etcd at {hc.etcd_url} says {health}")


def verify_apiserver(t: Target) -> Verdict:
    from kubernetes import client, config

    hc = cluster(t)
    try:
        api = config.new_client_from_config(config_file=hc.kubeconfig)
        version = client.VersionApi(api).get_code()
        names = [n.metadata.name for n in client.CoreV1Api(api).list_namespace(_request_timeout=5).items]
    except Exception as err:  # noqa: BLE001 - a missing kubeconfig or a refused connection: not started yet
        return Verdict.not_yet(f"the API does not answer at {hc.url} ({type(err).__name__}): start the apiserver")
    try:
        keys = hc.etcd_keys("/registry/namespaces/")
    except OSError:
        return Verdict.not_yet("the API answers but etcd does not: is etcd still running?")
    if "/registry/namespaces/default" not in keys:
        return Verdict.not_yet(f"the API answers, but its namespaces are not in this etcd (keys: {keys[:4]}): "
                               "start the apiserver with --store etcd:URL")
    return Verdict.ok(f"the API answers ({version.git_version}), namespaces {names}; in etcd: {keys}")


def verify_controller_manager(t: Target) -> Verdict:
    hc = cluster(t)
    try:
        core, apps = _client(hc), _apps(hc)
        apps.read_namespaced_deployment(DEPLOYMENT, "default")
    except Exception:  # noqa: BLE001
        return Verdict.not_yet(f"there is no Deployment {DEPLOYMENT!r} yet (or no API): create it")
    sets = [r for r in apps.list_namespaced_replica_set("default").items
            if any(o.kind == "Deployment" and o.name == DEPLOYMENT for o in r.metadata.owner_references or [])]
    if not sets:
        return Verdict.not_yet(f"Deployment {DEPLOYMENT} has no ReplicaSet: is the controller-manager running?")
    pods = [p.metadata.name for p in core.list_namespaced_pod("default").items
            if any(o.kind == "ReplicaSet" and o.name == sets[0].metadata.name
                   for o in p.metadata.owner_references or [])]
    if len(pods) < 2:
        return Verdict.not_yet(f"ReplicaSet {sets[0].metadata.name} has {len(pods)} of 2 pods so far")
    return Verdict.ok(f"Deployment {DEPLOYMENT} -> ReplicaSet {sets[0].metadata.name} -> pods {sorted(pods)}")


def verify_scheduler(t: Target) -> Verdict:
    hc = cluster(t)
    try:
        events = _client(hc).list_namespaced_event("default").items
    except Exception:  # noqa: BLE001
        return Verdict.not_yet(f"the API does not answer at {hc.url}")
    tried = [e for e in events if e.reason in ("FailedScheduling", "Scheduled")
             and (e.involved_object.name or "").startswith(DEPLOYMENT)]
    if not tried:
        return Verdict.not_yet(f"no scheduler has looked at the {DEPLOYMENT} pods yet (no FailedScheduling or "
                               "Scheduled event): start the scheduler")
    e = tried[-1]
    return Verdict.ok(f"the scheduler said about {e.involved_object.name}: {e.reason}: {e.message}")


def verify_cri(t: Target) -> Verdict:
    from labkit.node.cri.remote import RemoteRuntime

    hc = cluster(t)
    if not hc.cri_socket.exists():
        return Verdict.not_yet(f"no CRI socket at {hc.cri_socket}: start the CRI server")
    rt = RemoteRuntime(f"unix://{hc.cri_socket}", timeout=5, connect_timeout=3)
    try:
        v = rt.version()
    except Exception as err:  # noqa: BLE001
        return Verdict.not_yet(f"the CRI socket is there but nothing answers Version ({type(err).__name__})")
    finally:
        rt.close()
    return Verdict.ok(f"CRI Version over {hc.cri_socket.name}: {v.runtime_name} {v.runtime_version}")


def verify_kubelet(t: Target) -> Verdict:
    from labkit.client.conditions import is_ready

    hc = cluster(t)
    try:
        core = _client(hc)
        node = core.read_node(hc.node)
    except Exception:  # noqa: BLE001
        return Verdict.not_yet(f"there is no Node {hc.node!r}: start the kubelet")
    if not is_ready(core.api_client.sanitize_for_serialization(node)):
        return Verdict.not_yet(f"Node {hc.node} is registered but not Ready yet")
    pods = [p for p in core.list_namespaced_pod("default").items if p.metadata.name.startswith(DEPLOYMENT)]
    unbound = [p.metadata.name for p in pods if p.spec.node_name != hc.node]
    if not pods or unbound:
        return Verdict.not_yet(f"Node {hc.node} is Ready, but pods {unbound or 'of hello'} are not bound to it yet")
    return Verdict.ok(f"Node {hc.node} is Ready; the scheduler bound {sorted(p.metadata.name for p in pods)} to it")


def verify_pod(t: Target) -> Verdict:
    from labkit.node.cri.remote import RemoteRuntime

    hc = cluster(t)
    try:
        pod = _client(hc).read_namespaced_pod(POD, "default")
    except Exception:  # noqa: BLE001
        return Verdict.not_yet(f"there is no pod {POD!r} in namespace default yet")
    if pod.spec.node_name != hc.node:
        return Verdict.not_yet(f"pod {POD} is not bound to {hc.node} yet")
    if pod.status.phase != "Running":
        return Verdict.not_yet(f"pod {POD} is on {hc.node} but {pod.status.phase}")
    rt = RemoteRuntime(f"unix://{hc.cri_socket}", timeout=5, connect_timeout=3)
    try:
        mine = [c for c in rt.list_containers()
                if c.labels.get("io.kubernetes.pod.name") == POD and str(c.state).upper().endswith("RUNNING")]
    finally:
        rt.close()
    if not mine:
        return Verdict.not_yet(f"the API says {POD} runs, but the CRI server lists no running container of it")
    return Verdict.ok(f"pod {POD} runs on {hc.node}; the CRI server lists its container {mine[0].id[:12]} "
                      f"({mine[0].state})")


STATEMENTS = [
    ("Start etcd", "Start etcd, the store, as a process of its own (its command is in the README and on this "
     "page). The check asks etcd's `/health`."),
    ("Start the apiserver", "Start labkit's apiserver with `--store etcd:URL`, pointing at your etcd, and write a "
     "kubeconfig for it. The check calls the API with the official client and then looks in etcd for the "
     "key `/registry/namespaces/default`."),
    ("Start the controller-manager", "Start the controller-manager, then create a Deployment `hello` (2 replicas "
     "of `busybox`, `sleep 3600`). The check follows the owner references: Deployment, ReplicaSet, 2 pods."),
    ("Start the scheduler", "Start the scheduler. There is no node yet, so it cannot place the `hello` pods; "
     "the check reads the Event in which it says so (reason `FailedScheduling`)."),
    ("Start a CRI server", "Start a CRI server on a socket in your cluster folder. It needs no control plane: "
     "the check calls its `Version` over gRPC."),
    ("Start the kubelet", "Start a kubelet that uses your CRI socket. The check waits for its Node to be "
     "Ready, and for the scheduler to bind the `hello` pods to it."),
    ("Run a pod of your own", f"Create a pod `{POD}` (busybox, `sleep 3600`) with the official client or "
     "kubectl. The check wants it Running on your node, and its container listed by the CRI server."),
]
SOLUTION_TEXTS = [
    "`etcd --data-dir cluster/etcd --listen-client-urls http://127.0.0.1:P --advertise-client-urls ...` "
    "(see `HandCluster.command('etcd')`)",
    "`python -m labkit.controlplane.apiserver --port A --store etcd:http://127.0.0.1:P`, and a kubeconfig with "
    "`server: http://127.0.0.1:A`",
    "`python -m labkit.controlplane.controllers --kubeconfig K`, then `kubectl create deployment hello "
    "--image=busybox --replicas=2 -- sleep 3600`",
    "`python -m labkit.controlplane.scheduler --kubeconfig K`",
    "`python -m labkit.node.cri.server --socket cluster/cri.sock --backend native`",
    "`python -m labkit.node --kubeconfig K --node-name NODE --runtime unix://cluster/cri.sock --cleanup-on-exit`",
    f"`kubectl run {POD} --image=busybox -- sleep 3600`",
]
VERIFY = [verify_etcd, verify_apiserver, verify_controller_manager, verify_scheduler, verify_cri, verify_kubelet,
          verify_pod]
CONCEPTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "CRI", "kubelet", "pod life cycle"]
DIFFICULTY = ["easy", "easy", "medium", "easy", "easy", "medium", "easy"]
NEEDS_PARTS = [("etcd",), ("etcd",), ("etcd",), ("etcd",), ("root",), ("root", "etcd"), ("root", "etcd")]

EXERCISES = [
    Exercise(
        id=f"31.{n}",
        title=STATEMENTS[n - 1][0],
        statement=STATEMENTS[n - 1][1],
        setup=_setup(n),
        verify=VERIFY[n - 1],
        solution=STEPS[n - 1],
        solution_text=SOLUTION_TEXTS[n - 1],
        cleanup=stop_all,
        concept=CONCEPTS[n - 1],
        difficulty=DIFFICULTY[n - 1],  # type: ignore[arg-type]
        needs=NEEDS_PARTS[n - 1],
        timeout=60.0,
    )
    for n in range(1, len(STEPS) + 1)
]
