"""labkit's local image store, kept as an OCI image layout on disk.

Layout (the same one ``skopeo``/``umoci``/``oras`` read)::

    <root>/oci-layout                 {"imageLayoutVersion": "1.0.0"}
    <root>/index.json                 one manifest entry per image name
    <root>/blobs/sha256/<hex>         manifests, configs and layers, named by their own digest
    <root>/unpacked/<diff_id hex>/    each layer unpacked once, shared as an overlayfs lower dir

Every blob is named by the sha256 of its bytes (*content addressing*), so a changed byte gives a
different name, and the manifest digest names the whole image exactly.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.atomicfile import write_atomic
from labkit.errors import LabkitError, NotFound
from labkit.images import layers as L
from labkit.images import lookup
from labkit.images.lookup import REF_ANNOTATION
from labkit.images.recipes import RECIPES, Recipe
from labkit.images.rootfs import RootFS, mount_overlay

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
CREATED = "2015-04-14T00:00:00Z"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?$")


class ImageError(LabkitError):
    """An image operation that failed; the message says what to do."""


class ImageNotFound(ImageError, NotFound):
    """No image by that name in the store."""


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def normalize_name(name: str) -> str:
    """``busybox`` -> ``busybox:latest``; raise a clear error for names Docker would refuse."""
    n = name.strip()
    if not n or not _NAME_RE.match(n):
        raise ImageError(f"{name!r} is not a valid image name; use lowercase letters, digits, '-', '_', '.'"
                         " and an optional ':tag', e.g. busybox:latest")
    return n if ":" in n.rsplit("/", 1)[-1] else n + ":latest"


def _arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(m, m)


@dataclass
class Layer:
    digest: str  # of the blob as stored (compressed)
    diff_id: str  # of the uncompressed tar: what overlay dirs and Docker key on
    size: int
    media_type: str


@dataclass
class Image:
    """One image: a manifest, a config and its layers, bottom first."""

    name: str
    digest: str  # manifest digest: the image's identity
    config_digest: str  # Docker shows this as the image ID
    config: dict[str, Any]  # the runtime defaults: Env, Cmd, Entrypoint, WorkingDir
    layers: list[Layer]
    manifest: dict[str, Any] = field(default_factory=dict)
    full_config: dict[str, Any] = field(default_factory=dict)

    @property
    def diff_ids(self) -> list[str]:
        return [layer.diff_id for layer in self.layers]

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers)

    @property
    def env(self) -> list[str]:
        return list(self.config.get("Env") or [])

    @property
    def cmd(self) -> list[str]:
        return list(self.config.get("Entrypoint") or []) + list(self.config.get("Cmd") or [])


@dataclass
class DockerImage:
    """The same image as Docker knows it after :meth:`ImageStore.export_to_docker`."""

    ref: str
    id: str  # Docker's image ID = sha256 of the config blob
    diff_ids: list[str]


class ImageStore:
    """The on-disk OCI image layout, with recipes to build images and overlay roots to run them."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        if root is None:
            from labkit.paths import images_dir

            root = images_dir()
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.unpacked = self.root / "unpacked"
        try:
            self.blobs.mkdir(parents=True, exist_ok=True)
            self.unpacked.mkdir(parents=True, exist_ok=True)
        except PermissionError as exc:
            raise ImageError(f"cannot write the image store at {self.root}: permission denied; "
                             "set LABKIT_IMAGES to a directory you own") from exc
        for name, doc in (("oci-layout", {"imageLayoutVersion": "1.0.0"}),
                          ("index.json", {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": []})):
            try:  # "x": never overwrite what another process has just written
                with open(self.root / name, "x") as f:
                    json.dump(doc, f, indent=2)
            except FileExistsError:
                pass

    # --- blobs and the index ---------------------------------------------------
    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """One writer at a time (other processes may build into the same store)."""
        try:
            import fcntl
        except ImportError:  # not a Unix: a single process is the only writer
            yield
            return
        with open(self.root / ".lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def put_blob(self, data: bytes) -> str:
        """Store bytes under their own digest and return it (writing is skipped if present)."""
        digest = sha256(data)
        path = self.blobs / digest.split(":", 1)[1]
        if not path.exists():
            write_atomic(path, data)
        return digest

    def blob(self, digest: str) -> bytes:
        path = self.blobs / digest.split(":", 1)[-1]
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise ImageError(f"blob {digest} is missing from {self.root}; rebuild the image") from exc
        return data

    def verify(self, digest: str) -> bool:
        """Re-hash a blob: True when its bytes still match its name."""
        return sha256(self.blob(digest)) == digest

    def _index(self) -> dict[str, Any]:
        try:
            return json.loads((self.root / "index.json").read_text())
        except (OSError, ValueError):
            return {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": []}

    def _write_index(self, index: dict[str, Any]) -> None:
        write_atomic(self.root / "index.json", json.dumps(index, indent=2))

    # --- reading images ----------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(m.get("annotations", {}).get(REF_ANNOTATION, "") for m in self._index()["manifests"])

    def exists(self, name: str) -> bool:
        return normalize_name(name) in self.names()

    def get(self, name: str) -> Image:
        """The image called ``name``, or :class:`ImageNotFound` saying how to build it."""
        ref = normalize_name(name)
        digest = lookup.manifest_digest(self._index(), ref)
        if digest is not None:
            return self._load(ref, digest)
        hint = f"run `labkit image build {ref.split(':')[0]}`" if ref.split(":")[0] in RECIPES else \
            f"build it with ImageStore.build({ref.split(':')[0]!r}, base='busybox', add=...)"
        have = ", ".join(self.names()) or "none"
        raise ImageNotFound(f"no image {ref} in {self.root}; {hint} (images here: {have})")

    def _load(self, ref: str, digest: str) -> Image:
        manifest = json.loads(self.blob(digest))
        cfg_digest = manifest["config"]["digest"]
        full = json.loads(self.blob(cfg_digest))
        diff_ids = full.get("rootfs", {}).get("diff_ids", [])
        layers = [Layer(d["digest"], diff_ids[i] if i < len(diff_ids) else d["digest"], d["size"], d["mediaType"])
                  for i, d in enumerate(manifest["layers"])]
        return Image(ref, digest, cfg_digest, full.get("config", {}), layers, manifest, full)

    def list(self) -> list[Image]:
        return [self.get(n) for n in self.names()]

    def remove(self, name: str) -> None:
        """Forget an image and delete blobs and unpacked layers no other image uses."""
        ref = normalize_name(name)
        with self._lock():
            index = self._index()
            keep = [m for m in index["manifests"] if m.get("annotations", {}).get(REF_ANNOTATION) != ref]
            if len(keep) == len(index["manifests"]):
                raise ImageNotFound(f"no image {ref} to remove (images here: {', '.join(self.names()) or 'none'})")
            index["manifests"] = keep
            self._write_index(index)
            self._collect_garbage()

    def _collect_garbage(self) -> None:
        used: set[str] = set()
        used_diffs: set[str] = set()
        for m in self._index()["manifests"]:
            img = self._load("", m["digest"])
            used |= {img.digest, img.config_digest} | {x.digest for x in img.layers}
            used_diffs |= {x.diff_id.split(":")[1] for x in img.layers}
        for p in self.blobs.iterdir():
            if not p.name.startswith(".") and "sha256:" + p.name not in used:
                p.unlink(missing_ok=True)
        for p in self.unpacked.iterdir():
            if p.name not in used_diffs and not p.name.startswith("."):
                shutil.rmtree(p, ignore_errors=True)

    # --- building ----------------------------------------------------------------
    def ensure(self, name: str = "busybox") -> Image:
        """The image, built from its recipe first if the store does not have it yet."""
        ref = normalize_name(name)
        if self.exists(ref):
            return self.get(ref)
        repo = ref.split(":")[0]
        if repo not in RECIPES:
            return self.get(ref)  # raises ImageNotFound with a hint
        return self.build_recipe(repo, tag=ref.split(":")[1])

    def build_recipe(self, recipe: str, tag: str = "latest") -> Image:
        """Build a built-in recipe (``busybox``) into a one-layer image."""
        if recipe not in RECIPES:
            raise ImageError(f"no built-in recipe {recipe!r}; known recipes: {', '.join(sorted(RECIPES))}")
        with tempfile.TemporaryDirectory(prefix="labkit-build-") as tmp:
            rootfs = Path(tmp) / "rootfs"
            info: Recipe = RECIPES[recipe](rootfs)
            raw = L.tar_tree(rootfs)
        config = {"Env": info.env, "Cmd": info.cmd, "WorkingDir": "/"}
        history = [{"created": CREATED, "created_by": f"labkit recipe {recipe}: {info.source}"}]
        return self._commit(f"{recipe}:{tag}", [], [raw], config, history)

    def build(self, name: str, base: str | Image | None = None, add: dict[str, Any] | None = None,
              delete: list[str] | None = None, cmd: list[str] | None = None, env: dict[str, str] | None = None,
              workdir: str | None = None, compress: bool = True) -> Image:
        """A new image = ``base``'s layers + one layer that adds files and deletes others.

        ``add`` maps in-image paths to ``bytes``/``str`` content (``#!`` scripts become executable)
        or to ``(content, mode)``; ``delete`` lists in-image paths, recorded as ``.wh.`` whiteouts.
        """
        parent = None
        if base is not None:
            parent = base if isinstance(base, Image) else self.get(base)
        extra: dict[str, tuple[bytes, int]] = {}
        for path, value in (add or {}).items():
            if isinstance(value, tuple):
                content, mode = value
            elif isinstance(value, Path):
                content, mode = value.read_bytes(), os.stat(value).st_mode & 0o7777
            else:
                content = value.encode() if isinstance(value, str) else bytes(value)
                mode = 0o755 if content.startswith(b"#!") else 0o644
            extra[path] = (content.encode() if isinstance(content, str) else content, mode)
        raw = L.tar_tree(None, extra, list(delete or []))
        base_cfg = dict(parent.config) if parent else {"Env": [], "Cmd": ["sh"], "WorkingDir": "/"}
        if cmd is not None:
            base_cfg["Cmd"] = list(cmd)
        if env:
            merged = {e.split("=", 1)[0]: e for e in base_cfg.get("Env", [])}
            merged.update({k: f"{k}={v}" for k, v in env.items()})
            base_cfg["Env"] = list(merged.values())
        if workdir:
            base_cfg["WorkingDir"] = workdir
        history = list(parent.full_config.get("history", [])) if parent else []
        what = [f"ADD {p}" for p in (add or {})] + [f"DELETE {p}" for p in (delete or [])]
        history.append({"created": CREATED, "created_by": "labkit build: " + ("; ".join(what) or "(empty)")})
        return self._commit(name, parent.layers if parent else [], [raw], base_cfg, history,
                            base_diff_ids=parent.diff_ids if parent else [], compress=compress)

    def _commit(self, name: str, base_layers: list[Layer], new_raw: list[bytes], config: dict[str, Any],
                history: list[dict[str, Any]], base_diff_ids: list[str] | None = None,
                compress: bool = True) -> Image:
        ref = normalize_name(name)
        with self._lock():
            layers = list(base_layers)
            for raw in new_raw:
                blob = L.gzip_bytes(raw) if compress else raw
                layers.append(Layer(self.put_blob(blob), sha256(raw), len(blob),
                                    MT_LAYER_GZIP if compress else MT_LAYER_TAR))
            full = {
                "created": CREATED, "architecture": _arch(), "os": "linux", "config": config,
                "rootfs": {"type": "layers", "diff_ids": [x.diff_id for x in layers]},
                "history": history,
            }
            cfg_bytes = json.dumps(full, sort_keys=True, separators=(",", ":")).encode()
            cfg_digest = self.put_blob(cfg_bytes)
            manifest = {
                "schemaVersion": 2, "mediaType": MT_MANIFEST,
                "config": {"mediaType": MT_CONFIG, "digest": cfg_digest, "size": len(cfg_bytes)},
                "layers": [{"mediaType": x.media_type, "digest": x.digest, "size": x.size} for x in layers],
            }
            man_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
            man_digest = self.put_blob(man_bytes)
            index = self._index()
            index["manifests"] = [m for m in index["manifests"]
                                  if m.get("annotations", {}).get(REF_ANNOTATION) != ref]
            index["manifests"].append({"mediaType": MT_MANIFEST, "digest": man_digest, "size": len(man_bytes),
                                       "annotations": {REF_ANNOTATION: ref}})
            self._write_index(index)
        return self._load(ref, man_digest)

    # --- running: root file systems ------------------------------------------------
    def layer_dir(self, layer: Layer) -> Path:
        """The layer unpacked for overlayfs (whiteouts as 0/0 devices), made once and shared."""
        d = self.unpacked / layer.diff_id.split(":", 1)[1]
        if (d / ".done").exists():
            return d / "fs"
        with self._lock():
            if (d / ".done").exists():
                return d / "fs"
            tmp = Path(tempfile.mkdtemp(dir=self.unpacked, prefix=".tmp-"))
            try:
                with L.open_layer(self.blob(layer.digest), layer.media_type) as tf:
                    L.unpack(tf, tmp / "fs", overlay=True)
                (tmp / ".done").write_text(layer.diff_id)
                shutil.rmtree(d, ignore_errors=True)
                os.replace(tmp, d)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return d / "fs"

    def prepare_rootfs(self, image: str | Image, dest: str | os.PathLike[str],
                       scratch: str | os.PathLike[str] | None = None, overlay: bool = True) -> RootFS:
        """Mount ``image`` at ``dest`` as overlayfs (layers below, a fresh writable upper dir).

        ``scratch`` holds upper/ and work/ (default: ``<dest>.cow`` next to ``dest``). Without
        root, or when the kernel refuses overlayfs, the layers are copied into ``dest`` instead and
        the returned :class:`RootFS` says so (``mode == "copy"`` and a ``note``).
        """
        img = image if isinstance(image, Image) else self.get(image)
        dest_p = Path(dest)
        scratch_p = Path(scratch) if scratch else dest_p.with_name(dest_p.name + ".cow")
        if dest_p.exists() and any(dest_p.iterdir()):
            raise ImageError(f"{dest_p} is not empty; give prepare_rootfs an empty or new directory")
        note = "overlay not requested"
        if overlay:
            from labkit.paths import is_root

            if not is_root():
                note = "not root: overlayfs and whiteout devices need root, so the layers were copied"
            else:
                try:
                    lowers = [self.layer_dir(x) for x in reversed(img.layers)]
                    return mount_overlay(lowers, dest_p, scratch_p)
                except OSError as exc:
                    shutil.rmtree(scratch_p, ignore_errors=True)
                    note = f"overlayfs mount failed ({exc.strerror or exc}), so the layers were copied"
        dest_p.mkdir(parents=True, exist_ok=True)
        for layer in img.layers:
            with L.open_layer(self.blob(layer.digest), layer.media_type) as tf:
                L.unpack(tf, dest_p, overlay=False)
        return RootFS(dest_p, "copy", note=note)

    # --- Docker -----------------------------------------------------------------
    def docker_archive(self, image: str | Image, ref: str | None = None) -> bytes:
        """The image as a ``docker save`` archive: the same config and uncompressed layers."""
        img = image if isinstance(image, Image) else self.get(image)
        tag = ref or docker_ref(img.name)
        buf = io.BytesIO()
        cfg_bytes = self.blob(img.config_digest)
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
            def add(name: str, data: bytes) -> None:
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                ti.mtime = L.EPOCH
                tf.addfile(ti, io.BytesIO(data))
            cfg_name = img.config_digest.split(":")[1] + ".json"
            add(cfg_name, cfg_bytes)
            layer_names = []
            for layer in img.layers:
                raw = self.blob(layer.digest)
                if layer.media_type.endswith("gzip"):
                    import gzip

                    raw = gzip.decompress(raw)
                name = layer.diff_id.split(":")[1] + "/layer.tar"
                add(name, raw)
                layer_names.append(name)
            add("manifest.json", json.dumps([{"Config": cfg_name, "RepoTags": [tag],
                                               "Layers": layer_names}]).encode())
        return buf.getvalue()

    def export_to_docker(self, name: str | Image, ref: str | None = None) -> DockerImage:
        """``docker load`` this image; Docker's image ID then equals our config digest."""
        img = name if isinstance(name, Image) else self.get(name)
        tag = ref or docker_ref(img.name)
        try:
            import docker

            client = docker.from_env()
            client.ping()
        except Exception as exc:  # noqa: BLE001 - any failure here means "no usable daemon"
            raise ImageError(f"cannot reach the Docker Engine ({exc.__class__.__name__}); start dockerd "
                             "(sudo make setup starts it) or use another runtime") from exc
        try:
            client.images.load(self.docker_archive(img, tag))
            info = client.api.inspect_image(tag)
        finally:
            client.close()
        return DockerImage(tag, info["Id"], list(info.get("RootFS", {}).get("Layers", [])))


def docker_ref(name: str) -> str:
    """The tag labkit gives an image inside Docker: ``labkit/<name>``, so ``labkit gc`` can find it."""
    n = normalize_name(name)
    return n if n.startswith("labkit/") else "labkit/" + n
