"""``labkit chaos ACTION --target T --duration S``: inject a named fault into a running cluster, then undo it."""

from __future__ import annotations

import click

# action -> (one line of help, the target it takes); kept here so that `labkit chaos --help` imports nothing
ACTIONS = {
    "pod-kill": ("Delete a pod with grace period 0; its controller should replace it.", "[ns/]pod or a selector app=web"),
    "container-kill": ("Kill one container of a pod through its node's runtime; the kubelet should restart it.",
                       "[ns/]pod or a selector app=web"),
    "node-down": ("Stop a node's kubelet for the duration, then start it again.", "a node, e.g. node-2"),
    "node-drain": ("Cordon a node and evict its pods; uncordon it at the end.", "a node, e.g. node-2"),
    "network-partition": ("Cut a node off from the apiserver (and its pods from the other nodes).", "a node"),
    "network-delay": ("Delay the packets on a pod's veth (tc netem).", "[ns/]pod or a selector"),
    "network-loss": ("Drop a share of the packets on a pod's veth (tc netem, or iptables where there is no netem).",
                     "[ns/]pod or a selector"),
    "process-pause": ("SIGSTOP a component for the duration, then SIGCONT.",
                      "apiserver, scheduler, controller-manager, kubelet-NODE, cri-NODE, etcd"),
    "store-disk-full": ("Fill the small tmpfs under the cluster's store; writes fail, reads go on.", "store"),
    "apiserver-overload": ("A burst of clients on the apiserver for the duration; it answers 429 + Retry-After "
                           "past its in-flight limit.", "apiserver"),
}


@click.group()
def chaos() -> None:
    """Break a running cluster on purpose, for a while (names from Chaos Mesh and LitmusChaos).

    Every action undoes itself at the end, on Ctrl-C and on SIGTERM; after a kill -9,
    'labkit gc --only chaos' undoes what it left."""


def _command(action: str, summary: str, target_help: str) -> click.Command:
    @click.command(name=action, help=summary)
    @click.option("--target", "-t", required=True, help=f"What to break: {target_help}.")
    @click.option("--duration", "-d", type=click.FloatRange(0, 3600), default=10.0, show_default=True,
                  help="Seconds to hold the fault before undoing it.")
    @click.option("--cluster", "cluster_name", default="default", show_default=True,
                  help="The cluster ('labkit cluster up --name').")
    @click.option("--container", default=None, help="container-kill: which container (default: the first).")
    @click.option("--latency", "latency_ms", type=float, default=200.0, show_default=True,
                  help="network-delay: milliseconds added.")
    @click.option("--jitter", "jitter_ms", type=float, default=0.0, help="network-delay: +- milliseconds.")
    @click.option("--loss", "loss_percent", type=float, default=50.0, show_default=True,
                  help="network-loss: percent of packets dropped.")
    @click.option("--clients", type=click.IntRange(1, 5000), default=200, show_default=True,
                  help="apiserver-overload: how many clients at once.")
    @click.option("--control-plane-only", is_flag=True,
                  help="network-partition: cut only the kubelet's link to the apiserver, not the node's pods.")
    def run(target: str, duration: float, cluster_name: str, **options) -> None:
        from labkit.chaos import ChaosError, fault
        from labkit.chaos.fault import sigterm_as_interrupt

        try:
            f = fault(cluster_name, action, target, **options)
        except ChaosError as exc:
            raise click.ClickException(str(exc)) from None
        shown = 0
        try:
            with sigterm_as_interrupt(), f:  # SIGTERM at any moment undoes the fault, as Ctrl-C does
                for line in f.log:
                    click.echo(f"{action}: {line}")
                shown = len(f.log)
                click.echo(f"{action}: holding for {duration:g}s (Ctrl-C ends it early)")
                f.hold(duration)
        except KeyboardInterrupt:
            click.echo(f"{action}: interrupted", err=True)
        except ChaosError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            for line in f.log[shown:]:
                click.echo(f"{action}: {line}")
    return run


for _name, (_summary, _target) in ACTIONS.items():
    chaos.add_command(_command(_name, _summary, _target))
