"""``labkit image build|ls|rm|inspect|export``: the local OCI image store from the shell."""

from __future__ import annotations

import json

import click


def _store():  # noqa: ANN202 - imported lazily so `labkit --help` stays fast
    from labkit.images import ImageError, ImageStore

    try:
        return ImageStore()
    except ImageError as exc:
        raise click.ClickException(str(exc)) from exc


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@click.group()
def image() -> None:
    """Build and list images (OCI image layout, no registry needed)."""


@image.command()
@click.argument("recipe")
@click.option("--tag", default="latest", show_default=True, help="tag for the built image")
def build(recipe: str, tag: str) -> None:
    """Build a built-in RECIPE (busybox) into the local store."""
    from labkit.images import ImageError
    from labkit.images.recipes import RECIPES, RecipeError

    if recipe not in RECIPES:
        raise click.ClickException(f"no built-in recipe {recipe!r}; known recipes: {', '.join(sorted(RECIPES))}")
    try:
        img = _store().build_recipe(recipe, tag=tag)
    except (ImageError, RecipeError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"built {img.name}")
    click.echo(f"  digest  {img.digest}")
    click.echo(f"  layers  {len(img.layers)} ({_human(img.size)})")
    click.echo(f"  from    {img.full_config.get('history', [{}])[-1].get('created_by', '')}")


@image.command("ls")
def ls() -> None:
    """List the images in the store."""
    imgs = _store().list()
    click.echo(f"{'NAME':<32} {'DIGEST':<20} {'LAYERS':>6} {'SIZE':>10}")
    for img in imgs:
        click.echo(f"{img.name:<32} {img.digest[:19]:<20} {len(img.layers):>6} {_human(img.size):>10}")


@image.command()
@click.argument("name")
def rm(name: str) -> None:
    """Remove image NAME (and blobs no other image uses)."""
    from labkit.images import ImageError

    try:
        _store().remove(name)
    except ImageError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"removed {name}")


@image.command()
@click.argument("name")
def inspect(name: str) -> None:
    """Show NAME's manifest digest, config and layers as JSON."""
    from labkit.images import ImageError

    try:
        img = _store().get(name)
    except ImageError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps({"name": img.name, "digest": img.digest, "config_digest": img.config_digest,
                           "config": img.config, "layers": [vars(x) for x in img.layers]}, indent=2))


@image.command()
@click.argument("name")
def export(name: str) -> None:
    """Load NAME into the Docker Engine (same config digest = same Docker image ID)."""
    from labkit.images import ImageError

    try:
        d = _store().export_to_docker(name)
    except ImageError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"docker image {d.ref}  id {d.id}")
