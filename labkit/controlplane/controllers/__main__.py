"""``python -m labkit.controlplane.controllers --kubeconfig K``"""

from __future__ import annotations

import logging
import sys

import click

from labkit.client.leaderelection import run_component
from labkit.controlplane.componentmetrics import controller_manager_registry, serve_metrics
from labkit.controlplane.controllers.manager import ALL, ControllerManager


@click.command()
@click.option("--kubeconfig", type=click.Path(), default=None, help="API server to use (default $KUBECONFIG).")
@click.option("--controllers", default=",".join(ALL), show_default=True, help="Comma-separated controllers to run.")
@click.option("--node-monitor-grace-period", "grace", default=40.0, show_default=True,
              help="Seconds without a Lease renewal before a node is marked unreachable.")
@click.option("--eviction-seconds", "eviction_cap", type=float, default=None,
              help="Cap pods' tolerationSeconds for unreachable nodes (labs use a few seconds instead of 300).")
@click.option("--cluster-cidr", default="10.244.0.0/16", show_default=True, help="Pod network; nodes get /24s of it.")
@click.option("--leader-elect", is_flag=True,
              help="Act only while holding a Lease in kube-system (run several copies for availability).")
@click.option("--metrics-port", type=int, default=None,
              help="Serve Prometheus /metrics on this port of 127.0.0.1 (0: any free port; default: none).")
@click.option("--hpa-sync-period", type=float, default=15.0, show_default=True,
              help="Seconds between two looks of the HorizontalPodAutoscaler controller at each HPA.")
@click.option("--hpa-downscale-stabilization", type=float, default=300.0, show_default=True,
              help="Seconds of recommendations the HPA takes the highest of before scaling down.")
@click.option("-v", "--verbose", is_flag=True)
def main(kubeconfig: str | None, controllers: str, grace: float, eviction_cap: float | None, cluster_cidr: str,
         leader_elect: bool, metrics_port: int | None, hpa_sync_period: float, hpa_downscale_stabilization: float,
         verbose: bool) -> None:
    """labkit's kube-controller-manager."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s controller-manager %(levelname)s %(message)s")
    names = tuple(c.strip() for c in controllers.split(",") if c.strip())
    unknown = sorted(set(names) - set(ALL))
    if unknown:
        click.echo(f"error: unknown controllers {unknown}; choose from {', '.join(ALL)}", err=True)
        sys.exit(2)

    async def run(client) -> None:  # noqa: ANN001 - a labkit Client
        cm = ControllerManager(client, names, node_grace=grace, eviction_cap=eviction_cap, cluster_cidr=cluster_cidr,
                               hpa_sync_period=hpa_sync_period,
                               hpa_downscale_stabilization=hpa_downscale_stabilization)
        if metrics_port is not None:
            await serve_metrics(controller_manager_registry(cm.controllers), metrics_port)
        await cm.run()

    run_component(kubeconfig, "labkit-controller-manager", "kube-controller-manager", leader_elect, run)


if __name__ == "__main__":
    main()
