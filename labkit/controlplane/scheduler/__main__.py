"""``python -m labkit.controlplane.scheduler --kubeconfig K [--scheduler-name NAME]``"""

from __future__ import annotations

import logging

import click

from labkit.client.leaderelection import run_component
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

    run_component(kubeconfig, f"labkit-scheduler/{scheduler_name}", scheduler_name, leader_elect,
                  lambda client: Scheduler(client, scheduler_name, bind_concurrency=bind_concurrency,
                                           events=not no_events).run())


if __name__ == "__main__":
    main()
