"""``labkit doctor``: what this host supports for containers, why it matters, and which runtime runs."""

from __future__ import annotations

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def doctor(as_json: bool) -> None:
    """Report Linux, root, cgroups, namespaces, overlayfs, runc/crun, Docker, CNI, etcd, kubectl, dot."""
    from labkit.runtime import host, selection

    checks = host.checks()
    name, reason = selection.choose_default()
    if as_json:
        import json
        from dataclasses import asdict

        click.echo(json.dumps({"checks": [asdict(c) for c in checks], "default_runtime": name,
                               "reason": reason}, indent=1))
        return
    width = max(len(c.name) for c in checks)
    for c in checks:
        mark = "ok " if c.ok else "-- "
        click.echo(f"{mark}{c.name:<{width}}  {c.detail}")
        if not c.ok and c.why:
            click.echo(f"   {'':<{width}}  ({c.why})")
    click.echo("")
    click.echo(f"default runtime: {name}")
    click.echo(f"  why: {reason}")
