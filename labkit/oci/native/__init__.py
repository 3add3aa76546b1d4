"""labkit.oci.native: a small OCI runtime in Python that does what runc does.

Library: :class:`NativeContainer` (create/start/wait/kill/delete/state/exec, and ``run`` as the
fast path). Command line, shaped like runc's::

    python -m labkit.oci.native [--root DIR] create|start|state|kill|delete|run|exec ID --bundle B

See :mod:`labkit.oci.native.container` for the life cycle and :mod:`labkit.oci.native.init` for
what happens inside the container before its program runs.
"""

from labkit.oci.native.container import (
    RUNTIME_NAME,
    VERSION,
    ContainerNotFound,
    ExecOutput,
    ExecutableNotFound,
    ExitStatus,
    MemoryTooSmall,
    NativeContainer,
    NativeError,
    NotRoot,
    default_root,
)

__all__ = ["RUNTIME_NAME", "VERSION", "ContainerNotFound", "ExecOutput", "ExecutableNotFound", "ExitStatus",
           "MemoryTooSmall", "NativeContainer", "NativeError", "NotRoot", "default_root"]
