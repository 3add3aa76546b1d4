"""``labkit gc``: remove whatever a killed run left (containers, mounts, cgroups, netns, links, rules)."""

from __future__ import annotations

import click

from labkit.runtime.gc import KINDS, ROOT_KINDS


@click.command()
@click.option("--dry-run", "-n", is_flag=True, help="Only list what would be removed.")
@click.option("--only", "only", multiple=True, type=click.Choice(KINDS),
              help="Limit to these kinds (repeatable); default: all of them.")
def gc(dry_run: bool, only: tuple[str, ...]) -> None:
    """Remove labkit's leftovers on this host. Leaves images and Docker images alone."""
    from labkit.paths import is_root
    from labkit.runtime import gc as collector

    kinds = only or KINDS
    found = collector.find_leaks(kinds)
    if dry_run:
        for leak in found:
            click.echo(str(leak))
        click.echo(f"{len(found)} leftover(s); run without --dry-run to remove them", err=True)
        return
    if not is_root() and any(k in kinds for k in ROOT_KINDS):
        click.echo("labkit gc: not root; only your own records and processes can be removed (try sudo)", err=True)
    left = collector.collect(kinds)
    click.echo(f"removed {max(0, len(found) - len(left))} leftover(s)")
    if left:
        for leak in left:
            click.echo(f"still there: {leak}", err=True)
        raise SystemExit(1)
