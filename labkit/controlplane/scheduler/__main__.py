"""``python -m labkit.controlplane.scheduler --kubeconfig K [--scheduler-name NAME]``"""

from __future__ import annotations

import asyncio
import logging
import sys

import click

from labkit.client import Client
from labkit.client.kubeconfig import KubeConfigError
from labkit.client.leaderelection import LeaderElector, LeadershipLost
from labkit.controlplane.scheduler.scheduler import Scheduler


@click.command()
@click.option("--kubeconfig", type=click.Path(), default=None, help="API server to use (default $KUBECONFIG).")
@click.option("--scheduler-name", default="default-scheduler", show_default=True,
              help="Place only pods whose spec.schedulerName is this; use another name beside a real cluster's scheduler.")
@click.option("--bind-concurrency", default=64, show_default=True, help="Binds in flight at once.")
@click.option("--no-events", is_flag=True, help="Do not record Scheduled/FailedScheduling Events.")
@click.option("--leader-elect", is_flag=True,
              help="Act only while holding a Lease in kube-system (run several copies for availability).")
@click.option("-v", "--verbose", is_flag=True)
def main(kubeconfig: str | None, scheduler_name: str, bind_concurrency: int, no_events: bool, leader_elect: bool,
         verbose: bool) -> None:
    """labkit's kube-scheduler: filter, score, bind through the API."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s scheduler %(levelname)s %(message)s")

    async def run() -> None:
        client = Client(kubeconfig, user_agent=f"labkit-scheduler/{scheduler_name}")
        try:
            def work():
                return Scheduler(client, scheduler_name, bind_concurrency=bind_concurrency, events=not no_events).run()

            if leader_elect:
                await LeaderElector(client, scheduler_name).run(work)
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
