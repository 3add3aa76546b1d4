"""Find an image by name in labkit's store, with nothing but ``os`` and ``marshal``.

:class:`labkit.images.ImageStore` and ``labkit run --rm`` (:mod:`labkit.cli.fastpath.foreground`)
both find a name's manifest here (:func:`manifest_digest`); the fast path also reads the image's
config and unpacked layer folders through :func:`find_unpacked`, which keeps its answer in a
small cache so that a start does not pay for the json module.
"""

from __future__ import annotations

import marshal
import os

from labkit.atomicfile import write_atomic

REF_ANNOTATION = "org.opencontainers.image.ref.name"


def reference(name: str) -> str | None:
    """``busybox`` -> ``busybox:latest``; None for a name that is surely not valid (the store's
    :func:`~labkit.images.store.normalize_name` says why)."""
    n = name.strip()
    if not n or n[0] in "._-/:" or not all(c.isascii() and (c.isalnum() or c in "._/-:") for c in n):
        return None
    return n if ":" in n.rsplit("/", 1)[-1] else n + ":latest"


def manifest_digest(index: dict, ref: str) -> str | None:
    """The digest of the manifest that ``index.json`` names ``ref``, or None."""
    for m in index.get("manifests", []):
        if (m.get("annotations") or {}).get(REF_ANNOTATION) == ref:
            return m["digest"]
    return None


def find_unpacked(name: str, cache_file: str) -> dict | None:
    """The image's digest, config and unpacked layer folders (topmost first), or None.

    Resolving a name reads three JSON documents (index, manifest, config) and so needs the json
    module, which imports ``re`` and ``enum`` (~5 ms). The answer is kept in ``cache_file`` (labkit
    run keeps it beside the native backend's records), valid while ``index.json`` is the same file
    (the image store replaces it, never edits it, so a new image or tag means a new inode)."""
    ref = reference(name)
    if ref is None:
        return None
    root = os.environ.get("LABKIT_IMAGES") or "/var/lib/labkit/images"
    try:
        st = os.stat(os.path.join(root, "index.json"))
    except OSError:
        return None
    stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
    cache = _read_cache(cache_file)
    hit = cache.get(f"{root}\0{ref}")
    if hit is not None and hit[0] == stamp:
        img = hit[1]
    else:
        img = resolve(root, ref)
        if img is None:
            return None
        cache[f"{root}\0{ref}"] = (stamp, img)
        _write_cache(cache_file, cache)
    for low in img["lowers"]:
        if not os.path.exists(os.path.join(os.path.dirname(low), ".done")):
            return None  # not unpacked (any more): the image store does that (CRI path)
    return img


def resolve(root: str, ref: str) -> dict | None:
    """Read the index, manifest and config of ``ref`` in the store at ``root``: its digest, run
    config and layer folders (topmost first), or None."""
    import json

    try:
        with open(os.path.join(root, "index.json"), "rb") as f:
            index = json.loads(f.read())
        digest = manifest_digest(index, ref)
        if digest is None:
            return None
        with open(os.path.join(root, "blobs", "sha256", digest.split(":", 1)[1]), "rb") as f:
            manifest = json.loads(f.read())
        with open(os.path.join(root, "blobs", "sha256", manifest["config"]["digest"].split(":", 1)[1]), "rb") as f:
            full = json.loads(f.read())
        diff_ids = full["rootfs"]["diff_ids"]
    except (OSError, ValueError, KeyError, IndexError, AttributeError):
        return None
    if len(diff_ids) != len(manifest.get("layers") or []):
        return None
    lowers = [os.path.join(root, "unpacked", diff.split(":", 1)[1], "fs") for diff in reversed(diff_ids)]
    cfg = full.get("config") or {}
    keep = {k: cfg[k] for k in ("Env", "Cmd", "Entrypoint", "WorkingDir") if k in cfg}
    return {"ref": ref, "digest": digest, "config": keep, "lowers": lowers}


def _read_cache(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            data = marshal.loads(f.read())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError, EOFError, TypeError):
        return {}


def _write_cache(path: str, cache: dict) -> None:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_atomic(path, marshal.dumps(cache))
    except (OSError, ValueError):
        pass  # only a cache
