"""``%%needs``: a lab cell that needs root or a system part runs only where the host has it.

Where it does not, the cell is skipped with one line that says what is missing and what would
make it run, never a traceback and never a fake result. Load it in a lab's first cell::

    %load_ext labkit.view.needs

and start a cell with ``%%needs root etcd etcdctl``. Words: ``root`` (labkit may make namespaces,
mounts and cgroups here), or a program of the manifest ``labkit/system_parts.tsv``.
"""

from __future__ import annotations

from typing import Any

from labkit import system_parts


def missing(*requirements: str) -> list[str]:
    """What of ``requirements`` this host lacks, each said with its reason or package."""
    out = []
    for word in requirements:
        if word == "root":
            from labkit.runtime import host

            ok, why = host.can_run_real_containers()
            if not ok:
                out.append(why)
        elif system_parts.which(word) is None:
            p = system_parts.part(word)
            out.append(f"{p.name} is not installed ({system_parts.install_hint(word)})")
    return out


def needs(*requirements: str) -> bool:
    """True when the host has every requirement; else print the one skip line and return False."""
    lacking = missing(*requirements)
    if lacking:
        print(f"skipped: this cell needs {', '.join(requirements)}: {'; '.join(lacking)}. "
              "As root on Linux, after `sudo make setup`, it runs.")
    return not lacking


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%%needs`` in a notebook kernel (``%load_ext labkit.view.needs``)."""
    from IPython.core.magic import Magics, cell_magic, magics_class

    @magics_class
    class NeedsMagics(Magics):
        @cell_magic
        def needs(self, line: str, cell: str) -> None:
            """%%needs root etcd ...: run the cell only where the host has all of these."""
            if needs(*line.split()):
                self.shell.run_cell(cell).raise_error()

    ipython.register_magics(NeedsMagics)
