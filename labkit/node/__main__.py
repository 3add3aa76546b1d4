"""``python -m labkit.node --kubeconfig K --node-name N --runtime native|runc|crun|docker|simulated|unix:///sock``

One node in this process: its plug-ins and its kubelet (:func:`labkit.node.assembly.start_node`).
``python -m labkit.node.kubelet`` is the same command.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

# before grpc is imported: the native runtime forks in this process (see labkit.cluster)
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

import click

from labkit.client.kubeconfig import KubeConfigError
from labkit.errors import LabkitError
from labkit.node.assembly import NodeConfig, open_runtime, start_node


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
    lab = {}
    for item in labels:
        if "=" not in item:
            click.echo(f"error: --label wants key=value, got {item!r}", err=True)
            sys.exit(2)
        k_, v_ = item.split("=", 1)
        lab[k_] = v_
    config = NodeConfig(node_name, kubeconfig, runtime_spec, port=port, cpu=cpu, memory=memory, max_pods=max_pods,
                        labels=lab, lease_interval=lease_interval, plugins=not no_plugins, gpus=gpus,
                        cleanup_on_exit=cleanup_on_exit, verbose=verbose)
    try:
        runtime, said = open_runtime(runtime_spec)
    except LabkitError as exc:
        click.echo(f"error: runtime {runtime_spec!r} cannot run here: {exc}", err=True)
        sys.exit(2)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for s in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(s, stop.set)
        node = await start_node(config, runtime)
        try:
            logging.info("node %s ready: runtime %s, logs on %s:%d", node_name, said, node.kubelet.address,
                         node.kubelet.port)
            await stop.wait()
        finally:
            await node.stop()

    try:
        asyncio.run(run())
    except KubeConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    finally:
        runtime.close()


if __name__ == "__main__":
    main()
