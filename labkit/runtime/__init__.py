"""labkit.runtime: one CRI-shaped interface, four kinds of backend.

* ``native``    — labkit's own runtime (:mod:`labkit.oci.native`), written in Python
* ``runc`` / ``crun`` (``oci`` = whichever is installed, runc first) — the real OCI runtimes
* ``docker``    — the Docker Engine through its SDK
* ``simulated`` — plain host processes, no isolation (works anywhere, says so)

    import labkit.runtime as rt
    r = rt.get("runc")               # a labkit.runtime.base.Runtime
    d = rt.default(); d.reason       # the best backend on this host, and why
    rt.run("busybox", ["sh", "-c", "echo $$"], runtime="native").stdout   # b"1\\n"

Backends are imported only when asked for, so ``import labkit.runtime`` costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labkit.runtime.selection import NAMES, UnknownRuntime, choose_default, default, get

if TYPE_CHECKING:
    from labkit.runtime.oneshot import RunResult

__all__ = ["NAMES", "UnknownRuntime", "choose_default", "default", "get", "run", "RunResult"]


def run(image: str, cmd: list[str] | str | None = None, runtime: str | None = None, **kw) -> RunResult:
    """Run one container to completion and clean up; see :func:`labkit.runtime.oneshot.run`."""
    from labkit.runtime.oneshot import run as _run

    return _run(image, cmd, runtime=runtime, **kw)


def __getattr__(name: str):
    if name == "RunResult":
        from labkit.runtime.oneshot import RunResult

        return RunResult
    raise AttributeError(name)
