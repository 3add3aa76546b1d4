"""``labkit backup create|restore``: store snapshots and namespace archives from the shell."""

from __future__ import annotations

from pathlib import Path

import click


def _cluster_info(name: str) -> dict:
    from labkit.cluster import statefile
    from labkit.cluster.cluster import ClusterError

    try:
        return statefile.read(name)
    except (ClusterError, FileNotFoundError, OSError) as exc:
        raise click.ClickException(f"{exc}; or give --store URL / --kubeconfig FILE") from None


@click.group()
def backup() -> None:
    """Back up a cluster and restore it: store snapshots, and namespace archives in the manner of Velero."""


@backup.command()
@click.argument("dest", type=click.Path(dir_okay=False))
@click.option("--store", "store_url", default=None,
              help="Snapshot this store: sqlite:PATH or etcd:http://HOST:PORT (default: the cluster's).")
@click.option("--namespace", "-n", "namespaces", multiple=True,
              help="Back up these namespaces' objects to a tar.gz archive instead (repeatable).")
@click.option("--kubeconfig", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The cluster whose namespaces to archive (default: the --cluster one).")
@click.option("--cluster", "cluster_name", default="default", show_default=True,
              help="The `labkit cluster up` cluster to back up.")
def create(dest: str, store_url: str | None, namespaces: tuple[str, ...], kubeconfig: str | None,
           cluster_name: str) -> None:
    """Write a backup to DEST: a store snapshot, or with --namespace an object archive."""
    if namespaces:
        from labkit.backup.objects import backup_namespaces

        kc = kubeconfig or _cluster_info(cluster_name)["kubeconfig"]
        try:
            summary = backup_namespaces(list(namespaces), dest, kc)
        except (ValueError, OSError) as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"archive {dest}: {summary}")
        return
    from labkit.backup.storesnapshot import snapshot_store

    url = store_url or _cluster_info(cluster_name).get("store_url") or ""
    if not url:
        raise click.ClickException(f"cluster {cluster_name!r} does not say which store it runs on; give --store URL")
    try:
        info = snapshot_store(url, dest)
    except (ValueError, OSError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(str(info))


@backup.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.option("--into", "into", type=click.Path(), default=None,
              help="For a store snapshot: the new store (a sqlite file, or a new folder for etcd).")
@click.option("--kubeconfig", type=click.Path(exists=True, dir_okay=False), default=None,
              help="For an archive: the cluster to create its objects in (default: the --cluster one).")
@click.option("--cluster", "cluster_name", default="default", show_default=True)
@click.option("--namespace", "-n", "namespaces", multiple=True, help="Restore only these namespaces of an archive.")
def restore(source: str, into: str | None, kubeconfig: str | None, cluster_name: str,
            namespaces: tuple[str, ...]) -> None:
    """Restore SOURCE: an archive into a running cluster, or a store snapshot into a fresh store."""
    import tarfile

    if tarfile.is_tarfile(source):
        from labkit.backup.objects import restore_archive

        kc = kubeconfig or _cluster_info(cluster_name)["kubeconfig"]
        try:
            summary = restore_archive(source, kc, list(namespaces) or None)
        except (ValueError, OSError) as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"restored {summary}")
        for note in summary.notes:
            click.echo(f"  {note}")
        return
    from labkit.backup.storesnapshot import restore_snapshot, snapshot_backend

    if into is None:
        raise click.ClickException("a store snapshot is restored into a new store: give --into PATH "
                                   "(a new .db file for sqlite, a new folder for etcd)")
    try:
        restored = restore_snapshot(source, into, start=False)
    except (ValueError, OSError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"restored revision {restored.revision} ({restored.keys} keys) into {Path(into)}")
    if snapshot_backend(source) == "etcd":
        m = restored.etcd.members[0]
        click.echo("start etcd on it:  " + " ".join(restored.etcd._command(m)))
    click.echo(f"then a control plane on it:  labkit cluster up --store {restored.url}")
