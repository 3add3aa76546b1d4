"""``python -m labkit.node.kubelet --kubeconfig K --node-name N --runtime native|runc|crun|docker|simulated|unix:///sock``"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

# before grpc is imported: the native runtime forks in this process (see labkit.cluster)
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

import click

from labkit.client import Client
from labkit.client.kubeconfig import KubeConfigError
from labkit.errors import LabkitError
from labkit.node.kubelet.kubelet import DeviceNotifier, Kubelet, load_plugins
from labkit.runtime.base import Runtime


def open_runtime(spec: str | None) -> tuple[Runtime, str]:
    """The runtime named by --runtime (or the best one here), and a sentence saying which really runs."""
    if spec and spec.startswith("unix:"):
        from labkit.node.cri.remote import RemoteRuntime

        rt = RemoteRuntime(spec)
        return rt, f"CRI at {spec} (backend {rt.version().runtime_name})"
    import labkit.runtime as runtimes

    if spec:
        rt = runtimes.get(spec)
        return rt, f"in-process {rt.version().runtime_name}"
    rt = runtimes.default()
    return rt, f"in-process {getattr(rt, 'reason', rt.version().runtime_name)}"


@click.command()
@click.option("--kubeconfig", type=click.Path(), default=None, help="API server to use (default $KUBECONFIG).")
@click.option("--node-name", required=True, help="Name of the Node object this kubelet registers.")
@click.option("--runtime", "runtime_spec", default=None,
              help="native | runc | crun | docker | simulated | unix:///path/cri.sock (default: the best one here)")
@click.option("--port", default=0, show_default=True, help="Port for logs (0 = any free port on 127.0.0.1).")
@click.option("--cpu", default=None, help="Advertised cpu capacity (default: this host's).")
@click.option("--memory", default=None, help="Advertised memory capacity, e.g. 8Gi (default: this host's).")
@click.option("--max-pods", default="110", show_default=True)
@click.option("--label", "labels", multiple=True, help="Node label key=value (repeatable).")
@click.option("--lease-interval", default=5.0, show_default=True, help="Seconds between Lease renewals.")
@click.option("--no-plugins", is_flag=True, help="Do not load CNI/CSI/device plugins.")
@click.option("--gpus", default=0, show_default=True, help="Start the sample device plugin with N GPUs.")
@click.option("--cleanup-on-exit", is_flag=True, help="On SIGTERM remove this node's pods (labkit cluster down).")
@click.option("-v", "--verbose", is_flag=True)
def main(kubeconfig, node_name, runtime_spec, port, cpu, memory, max_pods, labels, lease_interval, no_plugins,
         gpus, cleanup_on_exit, verbose) -> None:
    """labkit's kubelet."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format=f"%(asctime)s kubelet[{node_name}] %(levelname)s %(message)s")
    try:
        runtime, said = open_runtime(runtime_spec)
    except LabkitError as exc:
        click.echo(f"error: runtime {runtime_spec!r} cannot run here: {exc}", err=True)
        sys.exit(2)
    from labkit.node.kubelet.nodestatus import host_capacity

    cap = host_capacity()
    if cpu:
        cap["cpu"] = cpu
    if memory:
        cap["memory"] = memory
    cap["pods"] = max_pods
    lab = {}
    for item in labels:
        if "=" not in item:
            click.echo(f"error: --label wants key=value, got {item!r}", err=True)
            sys.exit(2)
        k_, v_ = item.split("=", 1)
        lab[k_] = v_
    notifier = DeviceNotifier()
    opts: dict = {"kubeconfig": kubeconfig} if kubeconfig else {}
    opts["on_device_change"] = notifier
    if gpus:
        opts["gpus"] = gpus
    plugins = None if no_plugins else load_plugins(node_name, **opts)

    async def run() -> None:
        client = Client(kubeconfig, user_agent=f"labkit-kubelet/{node_name}")
        k = Kubelet(client, node_name, runtime, plugins, capacity=cap, labels=lab, port=port,
                    lease_interval=lease_interval)
        notifier.kubelet = k
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for s in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(s, stop.set)
        try:
            await k.start()
            logging.info("node %s ready: runtime %s, logs on %s:%d", node_name, said, k.address, k.port)
            await stop.wait()
        finally:
            await k.stop(kill_pods=cleanup_on_exit)
            await client.close()
            runtime.close()

    try:
        asyncio.run(run())
    except KubeConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
