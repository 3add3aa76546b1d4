"""``labkit run --rm`` on the native runtime without click: the command line read by hand.

Python starts in ~10 ms and click imports in ~30 ms, while runc runs a whole container in ~20 ms.
So the ``labkit`` entry point (and the venv's launcher, :mod:`labkit.cli.fastpath.launcher`, before it
even loads site) hands its arguments here first. This module accepts only the plain
shapes of ``labkit run --rm [--runtime native] [-m/--memory M] [--cpus N] [--pids-limit N]
[--name N] [--hostname H] [-e/--env K=V]... IMAGE [--] [CMD...]`` and returns None for anything
else (``--help``, ``-d``, another runtime, an option after IMAGE, a value it cannot read), so
that click's ``labkit run`` handles it exactly as before, with the same messages. It also
returns None when :mod:`labkit.cli.fastpath.foreground` cannot take the container (not root,
image not built yet, command missing from the image): nothing has been created by then.
"""

from __future__ import annotations

import os
import sys

_VALUED = {"--runtime": "runtime", "--memory": "memory", "-m": "memory", "--cpus": "cpus",
           "--pids-limit": "pids_limit", "--name": "name", "--hostname": "hostname", "-e": "env", "--env": "env"}


def parse(argv: list[str]) -> dict | None:
    """The options of a ``labkit run`` command line (as click would read them), or None to defer to click."""
    if not argv or argv[0] != "run":
        return None
    opts: dict = {"remove": False, "runtime": None, "memory": None, "cpus": None, "pids_limit": None,
                  "name": None, "hostname": None, "env": [], "image": None, "command": []}
    i, n = 1, len(argv)
    while i < n:
        a = argv[i]
        if a == "--rm":
            opts["remove"] = True
            i += 1
            continue
        if not a.startswith("-") or a == "-":
            break
        key, sep, value = a.partition("=") if a.startswith("--") else (a, "", "")
        field = _VALUED.get(key)
        if field is None:
            return None  # --help, -d, --detach, -mVALUE, an unknown option: click's job
        if not sep:
            if i + 1 >= n:
                return None
            value = argv[i + 1]
            i += 1
        i += 1
        if value.startswith("-"):
            return None
        if field == "env":
            opts["env"].append(value)
        else:
            opts[field] = value
    if i >= n:
        return None
    opts["image"] = argv[i]
    rest = argv[i + 1:]
    if rest[:1] == ["--"]:
        opts["command"] = rest[1:]
    elif any(r.startswith("-") for r in rest):
        return None  # click reads options after IMAGE too; let it
    else:
        opts["command"] = rest
    return opts


def main(argv: list[str]) -> int | None:
    """Run ``labkit run --rm ...`` here and return its exit code, or None to let click run the command."""
    opts = parse(argv)
    if opts is None or not opts["remove"]:
        return None
    runtime = opts["runtime"]
    if runtime is not None and runtime.lower() != "native":
        return None
    pids = opts["pids_limit"]
    if pids is not None:
        if not pids.isdigit():
            return None
        opts["pids_limit"] = int(pids)
    import gc

    gc.disable()  # a short-lived process: no cyclic garbage worth a collection pass
    from labkit.cli.fastpath import foreground

    return foreground.run(**opts)


def leave(code: int) -> None:
    """Exit now: flush what Python buffered and skip the interpreter's clean-up (a few ms of freeing
    objects nobody will use again); the container and its records are already gone."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
