"""Image layers: reproducible tar archives of a file-system change, and unpacking them.

A layer is a tar of the files one build step added or changed. A file the step *deleted* cannot
be "absent" from a tar, so the OCI image spec records it as an empty marker file named
``.wh.<name>`` (a *whiteout*); ``.wh..wh..opq`` in a directory hides everything below it in lower
layers (an *opaque* directory). When labkit unpacks a layer for overlayfs it turns each whiteout
into what overlayfs itself understands: a 0/0 character device, or the
``trusted.overlay.opaque`` attribute.

Tars are built with sorted names, fixed times and owners, so the same files always give the same
bytes and therefore the same sha256 digest.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
#: every file in a labkit layer carries this time (14 April 2015: the Borg paper's month)
EPOCH = 1429000000


class LayerError(ValueError):
    """A layer that cannot be built or unpacked; the message names the file."""


def _info(name: str, st: os.stat_result | None = None, kind: bytes = tarfile.REGTYPE,
          size: int = 0, mode: int = 0o644, linkname: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.size = size
    ti.mode = stat.S_IMODE(st.st_mode) if st is not None else mode
    ti.mtime = EPOCH
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    ti.linkname = linkname
    return ti


def tar_tree(root: str | os.PathLike[str], extra: dict[str, tuple[bytes, int]] | None = None,
             whiteouts: list[str] | None = None) -> bytes:
    """A reproducible tar of directory ``root`` (may be None-like empty), plus extra files and whiteouts.

    ``extra`` maps in-image paths to (content, mode); ``whiteouts`` lists in-image paths deleted
    by this layer. Parent directories are added as needed.
    """
    entries: dict[str, tarfile.TarInfo] = {}
    payload: dict[str, bytes | Path] = {}
    base = Path(root) if root else None
    if base is not None and base.exists():
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, base)
            for name in sorted(dirnames) + sorted(filenames):
                full = Path(dirpath) / name
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                st = full.lstat()
                if stat.S_ISLNK(st.st_mode):
                    entries[rel] = _info(rel, st, tarfile.SYMTYPE, linkname=os.readlink(full))
                elif stat.S_ISDIR(st.st_mode):
                    entries[rel] = _info(rel, st, tarfile.DIRTYPE)
                elif stat.S_ISREG(st.st_mode):
                    entries[rel] = _info(rel, st, size=st.st_size)
                    payload[rel] = full
                # sockets, fifos and device files are not image content
    def add_parents(rel: str) -> None:
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in entries:
                entries[d] = _info(d, kind=tarfile.DIRTYPE, mode=0o755)
    for path, (content, mode) in (extra or {}).items():
        rel = _clean(path)
        add_parents(rel)
        entries[rel] = _info(rel, size=len(content), mode=mode)
        payload[rel] = content
    for path in whiteouts or []:
        rel = _clean(path)
        parent, _, name = rel.rpartition("/")
        wh = f"{parent}/{WHITEOUT_PREFIX}{name}" if parent else f"{WHITEOUT_PREFIX}{name}"
        add_parents(wh)
        entries[wh] = _info(wh, mode=0o644)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for rel in sorted(entries):
            ti = entries[rel]
            data = payload.get(rel)
            if data is None:
                tf.addfile(ti)
            elif isinstance(data, bytes):
                tf.addfile(ti, io.BytesIO(data))
            else:
                with open(data, "rb") as f:
                    tf.addfile(ti, f)
    return buf.getvalue()


def _clean(path: str) -> str:
    rel = os.path.normpath("/" + path).lstrip("/")
    if not rel or rel == ".":
        raise LayerError(f"{path!r} is not a file path inside the image")
    return rel


def gzip_bytes(raw: bytes) -> bytes:
    """gzip with a zero timestamp, so compressing the same tar twice gives the same digest."""
    return gzip.compress(raw, compresslevel=6, mtime=0)


def open_layer(blob: bytes, media_type: str) -> tarfile.TarFile:
    data = gzip.decompress(blob) if media_type.endswith("gzip") else blob
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:")


def _safe_target(dest: Path, name: str) -> Path:
    rel = os.path.normpath(name.lstrip("/"))
    if rel.startswith("..") or os.path.isabs(rel):
        raise LayerError(f"layer entry {name!r} points outside the image")
    target = dest / rel
    # refuse to write through a symlink that an earlier entry planted in a parent directory
    parent = target.parent
    real_parent = os.path.realpath(parent)
    if real_parent != str(dest.resolve()) and not real_parent.startswith(str(dest.resolve()) + "/"):
        raise LayerError(f"layer entry {name!r} would be written outside the image through a symlink")
    return target


def _remove(p: Path) -> None:
    if p.is_symlink() or p.is_file() or (p.exists() and not p.is_dir()):
        p.unlink()
    elif p.is_dir():
        import shutil
        shutil.rmtree(p)


def unpack(tf: tarfile.TarFile, dest: str | os.PathLike[str], overlay: bool) -> None:
    """Unpack one layer into ``dest``.

    ``overlay=True``: ``dest`` becomes an overlayfs lower directory, so whiteouts become 0/0
    character devices and opaque markers an xattr (needs root). ``overlay=False``: ``dest`` already
    holds the lower layers merged, and whiteouts delete from it (the copy fallback).
    """
    d = Path(dest)
    d.mkdir(parents=True, exist_ok=True)
    for m in tf.getmembers():
        target = _safe_target(d, m.name)
        base = target.name
        if base == OPAQUE_MARKER:
            parent = target.parent
            parent.mkdir(parents=True, exist_ok=True)
            if overlay:
                os.setxattr(parent, "trusted.overlay.opaque", b"y")
            else:
                for child in parent.iterdir():
                    _remove(child)
            continue
        if base.startswith(WHITEOUT_PREFIX):
            hidden = target.parent / base[len(WHITEOUT_PREFIX):]
            target.parent.mkdir(parents=True, exist_ok=True)
            if overlay:
                if hidden.exists() or hidden.is_symlink():
                    _remove(hidden)
                os.mknod(hidden, 0o600 | stat.S_IFCHR, os.makedev(0, 0))
            else:
                if hidden.exists() or hidden.is_symlink():
                    _remove(hidden)
            continue
        if m.isdir():
            if target.exists() and not target.is_dir():
                _remove(target)
            target.mkdir(parents=True, exist_ok=True)
            os.chmod(target, m.mode)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() or target.is_symlink():
            _remove(target)
        if m.issym():
            os.symlink(m.linkname, target)
        elif m.islnk():
            src = _safe_target(d, m.linkname)
            os.link(src, target)
        elif m.isfile():
            f = tf.extractfile(m)
            assert f is not None
            with open(target, "wb") as out:
                while chunk := f.read(1 << 20):
                    out.write(chunk)
            os.chmod(target, m.mode)
        # device files, fifos: not part of labkit images; skipped
