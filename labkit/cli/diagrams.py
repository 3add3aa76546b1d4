"""``labkit diagrams``: regenerate the book's diagrams (DOT source + SVG) from code."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--out", default="images", show_default=True, type=click.Path(file_okay=False),
              help="Folder that receives NAME.dot and NAME.svg for every diagram.")
@click.option("--check", is_flag=True, help="Only report diagrams whose files are stale; exit 1 if any.")
def diagrams(out: str, check: bool) -> None:
    """Draw the book's diagrams from labkit.view.diagrams (the figures are never drawn by hand)."""
    from labkit.view import diagrams as d

    if check:
        problems = d.stale(out)
        for name, why in problems.items():
            click.echo(f"stale: {name}: {why}")
        if problems:
            raise click.ClickException("diagrams are stale: run 'labkit diagrams --out images' (or 'make diagrams')")
        click.echo(f"all {len(d.DIAGRAMS)} diagrams in {out} are fresh")
        return
    try:
        renderer = d.dot_binary()
        paths = d.render_all(Path(out))
    except d.DotNotFound as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"rendered {len(paths) // 2} diagrams into {out} with {renderer}")
