"""``python -m labkit.controlplane.controllers --kubeconfig K``"""

from __future__ import annotations

import asyncio
import logging
import sys

import click

from labkit.client import Client
from labkit.client.kubeconfig import KubeConfigError
from labkit.client.leaderelection import LeaderElector, LeadershipLost
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
@click.option("-v", "--verbose", is_flag=True)
def main(kubeconfig: str | None, controllers: str, grace: float, eviction_cap: float | None, cluster_cidr: str,
         leader_elect: bool, verbose: bool) -> None:
    """labkit's kube-controller-manager."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s controller-manager %(levelname)s %(message)s")
    names = tuple(c.strip() for c in controllers.split(",") if c.strip())
    unknown = sorted(set(names) - set(ALL))
    if unknown:
        click.echo(f"error: unknown controllers {unknown}; choose from {', '.join(ALL)}", err=True)
        sys.exit(2)

    async def run() -> None:
        client = Client(kubeconfig, user_agent="labkit-controller-manager")
        try:
            def work():
                return ControllerManager(client, names, node_grace=grace, eviction_cap=eviction_cap,
                                         cluster_cidr=cluster_cidr).run()

            if leader_elect:
                await LeaderElector(client, "kube-controller-manager").run(work)
            else:
                await work()
        finally:
            await client.close()

    try:
        asyncio.run(run())
    except LeadershipLost as exc:
        click.echo(f"error: {exc}; exiting so a restart can compete again", err=True)
        sys.exit(1)
    except KubeConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
