"""``labkit cluster up|status|down``: a whole cluster on this machine, one process per component."""

from __future__ import annotations

import click


@click.group()
def cluster() -> None:
    """Start, inspect and stop a local Kubernetes-shaped cluster (kubectl and the Python client work with it)."""


@cluster.command()
@click.option("--nodes", default=3, show_default=True, type=click.IntRange(0, 50), help="Number of nodes (kubelets).")
@click.option("--runtime", default=None,
              help="native | runc | crun | docker | simulated (default: the best one on this host).")
@click.option("--store", default="sqlite", show_default=True,
              help="Where the apiserver keeps objects: memory, sqlite or etcd; or an existing store, "
                   "sqlite:PATH or etcd:http://HOST:PORT (one `labkit backup restore` made).")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None,
              help="Write the kubeconfig here (default: in the cluster's state directory).")
@click.option("--port", default=0, type=int, help="API server port (default: a free one).")
@click.option("--name", default="default", show_default=True, help="Cluster name (several can run side by side).")
@click.option("--no-cri", is_flag=True, help="Kubelets call the runtime in-process instead of over a CRI socket.")
@click.option("--gpus", default=0, show_default=True, type=click.IntRange(0, 16),
              help="Simulated nvidia.com/gpu devices per node, from the sample device plugin run as a DaemonSet "
                   "in kube-system (where a pod cannot run it, e.g. --runtime simulated or without root, each "
                   "kubelet starts it in-process instead, and says so).")
@click.option("--secure", is_flag=True,
              help="TLS with the cluster's own CA, a token per user and component, Node,RBAC authorization "
                   "(the kubeconfig is the admin's, in group system:masters).")
def up(nodes: int, runtime: str | None, store: str, kubeconfig: str | None, port: int, name: str, no_cri: bool,
       gpus: int, secure: bool) -> None:
    """Start apiserver, scheduler, controller-manager and N kubelets in the background."""
    from labkit.cluster import Cluster, ClusterError, clusters_dir

    state = clusters_dir() / name / "cluster.json"
    if state.exists():
        try:
            old = Cluster.load(name)
            if any(c.alive for c in old.components.values()):
                raise click.ClickException(f"a cluster named {name!r} is already up ({old.url}); "
                                           f"run 'labkit cluster down --name {name}' first, or pick another --name")
        except ClusterError:
            pass
    if runtime:
        from labkit.runtime import NAMES

        if runtime not in NAMES:
            raise click.ClickException(f"unknown runtime {runtime!r}; choose one of: {', '.join(NAMES)}")
    c = Cluster(nodes=nodes, runtime=runtime, store=store, processes=True, name=name, cri=not no_cri, port=port,
                kubeconfig=kubeconfig, keep_state=True, node_grace=40.0, eviction_seconds=None, lease_interval=5.0,
                die_with_parent=False, gpus=gpus, secure=secure)
    try:
        c.start()
    except (ClusterError, OSError, ValueError) as exc:
        c.stop()
        raise click.ClickException(str(exc)) from None
    click.echo(c.describe())


@cluster.command()
@click.option("--name", default="default", show_default=True)
def status(name: str) -> None:
    """Show each component's process and each node's readiness."""
    from labkit.client.conditions import condition
    from labkit.cluster import Cluster, ClusterError

    try:
        c = Cluster.load(name)
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"cluster {c.name}: {c.url}  kubeconfig {c.kubeconfig}  runtime {c.runtime_reason}")
    if c.device_plugins:
        click.echo(f"  GPUs: {c.device_plugins}")
    for row in c.status():
        click.echo(f"  {row['component']:<24} pid {row['pid']:<8} {'running' if row['alive'] else 'NOT RUNNING'}")
    try:
        nodes = c.api_get("/api/v1/nodes").get("items") or []
    except (OSError, ValueError) as exc:
        click.echo(f"  API server not answering: {exc}")
        raise SystemExit(1) from None
    for n in nodes:
        ready = (condition(n, "Ready") or {}).get("status", "?")
        info = (n.get("status") or {}).get("nodeInfo") or {}
        click.echo(f"  node {n['metadata']['name']:<12} Ready={ready:<8} runtime {info.get('containerRuntimeVersion', '?')}")


@cluster.command()
@click.option("--name", default="default", show_default=True)
def down(name: str) -> None:
    """Stop every component and remove containers, sandboxes, sockets and state."""
    from labkit.cluster import Cluster, ClusterError

    try:
        c = Cluster.load(name)
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from None
    c.keep_state = False
    c.stop()
    click.echo(f"cluster {name} is down")
