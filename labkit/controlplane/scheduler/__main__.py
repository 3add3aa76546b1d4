"""``python -m labkit.controlplane.scheduler --kubeconfig K [--scheduler-name NAME]``"""

from __future__ import annotations

import logging

import click

from labkit.client.leaderelection import run_component
from labkit.controlplane.componentmetrics import scheduler_registry, serve_metrics
from labkit.controlplane.scheduler.framework import Framework
from labkit.controlplane.scheduler.plugins import SCORING_STRATEGIES, scores_for
from labkit.controlplane.scheduler.scheduler import Scheduler


@click.command()
@click.option("--kubeconfig", type=click.Path(), default=None, help="API server to use (default $KUBECONFIG).")
@click.option("--scheduler-name", default="default-scheduler", show_default=True,
              help="Place only pods whose spec.schedulerName is this; use another name beside a real cluster's scheduler.")
@click.option("--bind-concurrency", default=64, show_default=True, help="Binds in flight at once.")
@click.option("--no-events", is_flag=True, help="Do not record Scheduled/FailedScheduling Events.")
@click.option("--leader-elect", is_flag=True,
              help="Act only while holding a Lease in kube-system (run several copies for availability).")
@click.option("--scoring-strategy", type=click.Choice(SCORING_STRATEGIES), default="LeastAllocated",
              show_default=True, help="NodeResourcesFit's scoring: spread (LeastAllocated) or pack (MostAllocated).")
@click.option("--metrics-port", type=int, default=None,
              help="Serve Prometheus /metrics on this port of 127.0.0.1 (0: any free port; default: none).")
@click.option("--also-schedule-for", "also_for", multiple=True, metavar="NAME",
              help="Lab only: also take pods whose spec.schedulerName is NAME, so two schedulers contend for the "
                   "same pods (Omega's optimistic concurrency: the loser of a bind gets 409 and retries).")
@click.option("-v", "--verbose", is_flag=True)
def main(kubeconfig: str | None, scheduler_name: str, bind_concurrency: int, no_events: bool, leader_elect: bool,
         scoring_strategy: str, metrics_port: int | None, also_for: tuple[str, ...],
         verbose: bool) -> None:
    """labkit's kube-scheduler: filter, score, bind through the API."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s scheduler %(levelname)s %(message)s")

    async def run(client) -> None:  # noqa: ANN001 - a labkit Client
        sched = Scheduler(client, scheduler_name, bind_concurrency=bind_concurrency, events=not no_events,
                          also_for=also_for, framework=Framework(scores=scores_for(scoring_strategy)))
        if metrics_port is not None:
            await serve_metrics(scheduler_registry(sched), metrics_port)
        await sched.run()

    run_component(kubeconfig, f"labkit-scheduler/{scheduler_name}", scheduler_name, leader_elect, run)


if __name__ == "__main__":
    main()
