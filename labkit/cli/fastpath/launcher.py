"""A ``labkit`` launcher for the venv that starts faster than pip's console script.

pip writes ``.venv/bin/labkit`` as a script that Python starts *with* site (the venv's ``.pth``
files: ~3 ms) and that imports ``re`` before anything else (~6 ms), so a plain ``labkit run --rm``
spends about 9 ms before labkit's first line, while runc runs a whole container in ~20 ms.

``make setup`` replaces that script with the one :func:`render` writes. Its shebang starts the
venv's Python with ``-S`` (no site), it puts the folder that holds the ``labkit`` package on
``sys.path`` itself and offers the command line to :mod:`labkit.cli.fastpath.runfast`. Whatever the fast
path declines (every other command, ``--help``, errors to report) goes to the same click group
as pip's script, after ``site.main()`` has done what a normal start would have done (venv
prefix, site-packages, ``.pth`` files, ``sitecustomize``), so click, the kubernetes client and
the other packages import as usual. A user who installs with plain ``pip install .`` keeps pip's
script; both run the same code.

    python -m labkit.cli.fastpath.launcher [--venv .venv]      # write <venv>/bin/labkit
"""

from __future__ import annotations

import os
import sys

from labkit.atomicfile import write_atomic

MARKER = "# labkit launcher (written by labkit.cli.fastpath.launcher)"
# a shebang line longer than this, or with a space in it, is not run by every kernel: the script
# then starts as a shell script that execs the interpreter (what pip does for long paths too)
_SHEBANG_MAX = 127

_BODY = '''
{marker}: ``labkit run --rm`` without site and click; every other
# command through site and click exactly as pip's console script runs it. `make setup` rewrites it.
import sys

_HOME = {home!r}
_ADDED = _HOME not in sys.path  # PYTHONPATH may name it already
if _ADDED:
    sys.path.append(_HOME)
try:
    from labkit.cli.fastpath import runfast
except ImportError:  # the project moved or is not there: let the normal start say what is wrong
    runfast = None
if runfast is not None:
    code = runfast.main(sys.argv[1:])
    if code is not None:
        runfast.leave(code)
if _ADDED:
    sys.path.remove(_HOME)  # site.main() puts it where the .pth file says
import site

site.main()  # what a start without -S does: venv prefix, site-packages, .pth files, sitecustomize
from labkit.cli import group

if __name__ == "__main__":
    sys.exit(group()())
'''


def package_home() -> str:
    """The folder that holds the ``labkit`` package (the project for an editable install)."""
    import labkit

    return os.path.dirname(os.path.dirname(os.path.abspath(labkit.__file__)))


def render(python: str, home: str) -> str:
    """The launcher's text for this interpreter and package folder."""
    body = _BODY.format(marker=MARKER, home=home)
    shebang = f"#!{python} -S"
    if len(shebang) <= _SHEBANG_MAX and " " not in python and "\t" not in python:
        return shebang + "\n" + body.lstrip("\n")
    # sh runs the first line (exec python -S this-file args); Python reads it as a string literal
    quoted = "'" + python.replace("'", "'\"'\"'") + "'"
    return f"#!/bin/sh\n'''exec' {quoted} -S \"$0\" \"$@\"\n' '''\n" + body.lstrip("\n")


def install(venv: str) -> str:
    """Write ``<venv>/bin/labkit`` (atomically, mode 0755) and return its path.

    Raises ``FileNotFoundError`` with a plain message when the venv has no Python."""
    bindir = os.path.join(os.path.abspath(venv), "bin")
    python = os.path.join(bindir, "python")
    if not os.access(python, os.X_OK):
        raise FileNotFoundError(f"no Python at {python}; create the venv first (make setup)")
    target = os.path.join(bindir, "labkit")
    write_atomic(target, render(python, package_home()), mode=0o755)
    return target


def is_launcher(path: str) -> bool:
    """True when ``path`` is a launcher this module wrote (not pip's script)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return MARKER in f.read(4096)
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    """``python -m labkit.cli.fastpath.launcher [--venv DIR]``: write the launcher, say where."""
    args = list(sys.argv[1:] if argv is None else argv)
    venv = sys.prefix  # the venv whose Python runs this (python -m labkit.cli.fastpath.launcher)
    if args[:1] == ["--venv"] and len(args) == 2:
        venv = args[1]
    elif args:
        print("usage: python -m labkit.cli.fastpath.launcher [--venv DIR]", file=sys.stderr)
        return 2
    try:
        path = install(venv)
    except OSError as exc:
        print(f"labkit launcher: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path} (starts Python with -S; labkit run --rm skips site and click)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
