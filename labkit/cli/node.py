"""``labkit node join``: a kubelet on this machine joins a class's control plane (kubeadm join's way)."""

from __future__ import annotations

import os
import socket
import sys

import click


@click.group()
def node() -> None:
    """Run a node (a kubelet) for a control plane somewhere else."""


@node.command()
@click.option("--server", required=True, help="The API server, https://HOST:PORT (printed by 'labkit class up').")
@click.option("--token", required=True, help="The bootstrap token ID.SECRET (printed by 'labkit class up').")
@click.option("--ca-cert", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The cluster's CA certificate (the class folder's ca.crt).")
@click.option("--node-name", default=None, help="This node's name (default: this machine's host name).")
@click.option("--runtime", default=None, help="native | runc | crun | docker | simulated (default: the best here).")
@click.option("--dir", "folder", default=None, type=click.Path(file_okay=False),
              help="Where the node's kubeconfig and key go (default: <state>/joined/NAME).")
def join(server: str, token: str, ca_cert: str, node_name: str | None, runtime: str | None,
         folder: str | None) -> None:
    """Get this node's certificate with a bootstrap token, then run its kubelet until Ctrl-C."""
    from pathlib import Path

    from labkit import paths
    from labkit.node.bootstrap import JoinError, request_certificate, write_node_kubeconfig

    name = (node_name or socket.gethostname()).lower()
    try:
        cert, key = request_certificate(server, token, ca_cert, name)
    except JoinError as exc:
        raise click.ClickException(str(exc)) from None
    kubeconfig = write_node_kubeconfig(Path(folder or paths.state_dir() / "joined" / name) / "kubeconfig",
                                       server, ca_cert, cert, key, name)
    click.echo(f"node {name}: certificate for system:node:{name} signed; kubelet starting "
               f"(kubeconfig {kubeconfig}); Ctrl-C stops it and removes its pods", err=True)
    argv = [sys.executable, "-m", "labkit.node", "--node-name", name, "--kubeconfig", str(kubeconfig),
            "--cleanup-on-exit"] + (["--runtime", runtime] if runtime else [])
    sys.stderr.flush()
    os.execv(sys.executable, argv)
