"""labkit.oci.native: a small OCI runtime in Python that does what runc does.

Library: :class:`NativeContainer` (create/start/wait/kill/delete/state/exec, and ``run`` as the
fast path). Command line, shaped like runc's::

    python -m labkit.oci.native [--root DIR] create|start|state|kill|delete|run|exec ID --bundle B

See :mod:`labkit.oci.native.container` for the life cycle, :mod:`labkit.oci.native.init` for
what happens inside the container before its program runs, and
:mod:`labkit.cli.fastpath.foreground` for ``labkit run --rm``'s short way to a container.

The names below are imported on first use, so that ``labkit.cli.fastpath.foreground`` does not
pay for the library's imports (dataclasses, pathlib and the runtime interface cost ~15 ms).
"""

from __future__ import annotations

__all__ = ["RUNTIME_NAME", "VERSION", "ContainerNotFound", "ExecOutput", "ExecutableNotFound", "ExitStatus",
           "MemoryTooSmall", "NativeContainer", "NativeError", "NotRoot", "default_root"]


def __getattr__(name: str):
    if name in __all__:
        from labkit.oci.native import container

        return getattr(container, name)
    raise AttributeError(f"module 'labkit.oci.native' has no attribute {name!r}")
