"""One way to replace a file so that readers see the old file or the new one, never half of one.

Several processes write the same records at once (CRI workers, shims, ``kill``/``wait`` in other
``labkit`` commands, two image builds), so each writer takes a temp name of its own (its pid and a
random suffix) beside the target, then renames it over. Only ``os`` is imported: ``labkit run
--rm`` writes its records through here too, and pays for every import (``benchmarks/README.md``).
"""

from __future__ import annotations

import os


def write_atomic(path: str | os.PathLike[str], data: str | bytes, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` (text is UTF-8); ``mode`` sets the new file's permissions.

    A writer that fails (or is interrupted) removes its temp file; one killed outright leaves a
    ``.NAME.PID.RANDOM.tmp`` beside the target, which the owners' clean-up removes."""
    path = os.fspath(path)
    head, name = os.path.split(path)
    tmp = os.path.join(head, f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
