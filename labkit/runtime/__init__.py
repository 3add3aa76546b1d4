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

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labkit.runtime.base import Runtime
    from labkit.runtime.oneshot import RunResult

NAMES = ("native", "runc", "crun", "oci", "docker", "simulated")


def get(name: str) -> Runtime:
    """The backend called ``name``; see :func:`labkit.runtime.selection.get`."""
    from labkit.runtime.selection import get as _get

    return _get(name)


def default() -> Runtime:
    """The best backend on this host, with a ``reason``; see :func:`labkit.runtime.selection.default`."""
    from labkit.runtime.selection import default as _default

    return _default()


def choose_default() -> tuple[str, str]:
    from labkit.runtime.selection import choose_default as _choose

    return _choose()

__all__ = ["NAMES", "UnknownRuntime", "choose_default", "default", "get", "run", "RunResult"]


def run(image: str, cmd: list[str] | str | None = None, runtime: str | None = None, **kw) -> RunResult:
    """Run one container to completion and clean up; see :func:`labkit.runtime.oneshot.run`."""
    from labkit.runtime.oneshot import run as _run

    return _run(image, cmd, runtime=runtime, **kw)


def __getattr__(name: str) -> Any:
    # imported on first use so that ``import labkit.runtime.base`` (every component does it) stays cheap
    if name == "RunResult":
        from labkit.runtime.oneshot import RunResult

        return RunResult
    if name == "UnknownRuntime":
        from labkit.runtime.selection import UnknownRuntime

        return UnknownRuntime
    raise AttributeError(name)
