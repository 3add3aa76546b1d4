"""The ``labkit`` command.

Each sub-command lives in its own module next to this one and is imported only when it is
used, so ``labkit run`` does not pay for the control plane's imports. ``labkit run --rm`` on
the native runtime goes further and skips click as well (:mod:`labkit.cli.fastpath.runfast`): starting
Python and importing click cost more than runc needs to run a whole container. ``make setup``
also replaces pip's console script with :mod:`labkit.cli.fastpath.launcher`'s, which starts Python
without site and calls :func:`group` itself when the fast path declines.
"""

from __future__ import annotations

import sys

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
    "exercise": "labkit.cli.exercise:exercise",
    "chaos": "labkit.cli.chaos:chaos",
    "class": "labkit.cli.classroom:class_",
    "node": "labkit.cli.node:node",
}
COMMANDS["backup"] = "labkit.cli.backup:backup"  # issue 14: store snapshots and namespace archives

_GROUP = None


def group():
    """The click group behind ``labkit`` (built on first use: importing click costs ~30 ms)."""
    global _GROUP
    if _GROUP is not None:
        return _GROUP
    import importlib

    import click

    class LazyGroup(click.Group):
        def list_commands(self, ctx: click.Context) -> list[str]:
            return sorted(COMMANDS)

        def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
            target = COMMANDS.get(name)
            if target is None:
                return None
            module, attr = target.split(":")
            return getattr(importlib.import_module(module), attr)

    @click.group(cls=LazyGroup)
    @click.version_option(package_name="labkit")
    def main() -> None:
        """Containers, a runtime and a small Kubernetes control plane, for the book's labs."""

    _GROUP = main
    return main


class _Entry:
    """``labkit.cli.main``: the console script's entry point, and the click group for everyone else.

    Called with no arguments (the ``labkit`` script, ``python -m labkit.cli``) it first offers the
    command line to :func:`labkit.cli.fastpath.runfast.main`, which runs ``labkit run --rm`` on the native
    runtime without click and declines everything else. Any other use (``CliRunner().invoke``,
    ``main.commands``, ``main(["ps"])``) is the click group itself.
    """

    def __call__(self, *args, **kwargs):
        if not args and not kwargs:
            from labkit.cli.fastpath import runfast

            code = runfast.main(sys.argv[1:])
            if code is not None:
                runfast.leave(code)
        return group()(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(group(), name)


main = _Entry()
