"""The ``labkit`` command.

Each sub-command lives in its own module next to this one and is imported only when it is
used, so ``labkit run`` does not pay for the control plane's imports.
"""

from __future__ import annotations

import importlib

import click

# command name -> "module:attribute" (a click.Command or click.Group)
COMMANDS: dict[str, str] = {
    "doctor": "labkit.cli.doctor:doctor",
    "image": "labkit.cli.image:image",
    "run": "labkit.cli.container:run",
    "ps": "labkit.cli.container:ps",
    "logs": "labkit.cli.container:logs",
    "stop": "labkit.cli.container:stop",
    "gc": "labkit.cli.gc:gc",
    "cluster": "labkit.cli.cluster:cluster",
    "diagrams": "labkit.cli.diagrams:diagrams",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise click.ClickException(f"'labkit {name}' is not available: {exc}") from exc


@click.group(cls=LazyGroup)
@click.version_option(package_name="labkit")
def main() -> None:
    """Containers, a runtime and a small Kubernetes control plane, for the book's labs."""
