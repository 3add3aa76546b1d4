"""The one place the runtime layer reaches into :mod:`labkit.images`.

Every backend gets images the same way: from labkit's local OCI image store, built offline
(no registry). Keeping the calls here means a change in the image store's API touches one file.
"""

from __future__ import annotations

from typing import Any

from labkit.errors import NotFound
from labkit.runtime.base import ImageInfo

_store: Any = None


def store() -> Any:
    """The process-wide :class:`labkit.images.ImageStore` (created on first use)."""
    global _store
    if _store is None:
        from labkit.images import ImageStore

        _store = ImageStore()
    return _store


def _info(name: str, img: Any) -> ImageInfo:
    size = getattr(img, "size", None)
    if size is None:
        size = sum(int(getattr(layer, "size", 0) or 0) for layer in getattr(img, "layers", []) or [])
    return ImageInfo(name=name, digest=str(img.digest), size=int(size or 0))


def _missing(name: str, exc: Exception | None = None) -> NotFound:
    detail = f" ({exc})" if exc and str(exc) and name not in str(exc) else ""
    return NotFound(f"no image {name!r} in labkit's image store{detail}; build it first: labkit image build {name}")


def get(name: str, build: bool = True) -> Any:
    """The image object; builds a built-in recipe (e.g. ``busybox``) when it is missing."""
    s = store()
    try:
        return s.ensure(name) if build else s.get(name)
    except NotFound:
        raise
    except (KeyError, LookupError, FileNotFoundError, ValueError) as exc:
        raise _missing(name, exc) from exc
    except Exception as exc:  # the store's own "unknown image" error class
        if "not" in str(exc).lower() or "unknown" in str(exc).lower() or "no image" in str(exc).lower():
            raise _missing(name, exc) from exc
        raise


def status(name: str) -> ImageInfo | None:
    try:
        return _info(name, get(name, build=False))
    except NotFound:
        return None


def pull(name: str) -> ImageInfo:
    return _info(name, get(name, build=True))


def list_images() -> list[ImageInfo]:
    s = store()
    out: list[ImageInfo] = []
    lister = getattr(s, "list", None) or getattr(s, "images", None)
    if lister is None:
        return out
    for item in lister():
        name = getattr(item, "name", None) or getattr(item, "ref", None) or str(item)
        try:
            out.append(_info(name, item if hasattr(item, "digest") else s.get(name)))
        except Exception:  # noqa: BLE001 - a half-written image should not break listing
            continue
    return out


def image_config(img: Any) -> dict[str, Any]:
    """The image's OCI config block (Env, Cmd, Entrypoint, WorkingDir), whatever its shape."""
    cfg = getattr(img, "config", None) or {}
    if isinstance(cfg, dict) and "config" in cfg and isinstance(cfg["config"], dict):
        cfg = cfg["config"]
    return cfg if isinstance(cfg, dict) else {}
