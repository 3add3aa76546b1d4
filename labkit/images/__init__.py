"""labkit.images: images built offline, stored as an OCI image layout, run through overlayfs.

Contract (stable)::

    from labkit.images import ImageStore, ImageNotFound
    store = ImageStore()                    # root: labkit.paths.images_dir()
    img = store.ensure("busybox")           # builds the recipe the first time
    img.digest, img.config_digest, img.config["Cmd"], img.layers, img.diff_ids
    child = store.build("hello", base="busybox", add={"/hello.sh": "#!/bin/sh\\necho hi\\n"},
                        delete=["/bin/vi"], cmd=["/hello.sh"])
    rootfs = store.prepare_rootfs(img, "/run/labkit/c1/rootfs")   # overlayfs; .path, .mode, .unmount()
    store.export_to_docker("busybox")       # -> DockerImage(ref="labkit/busybox:latest", id=config digest)
    store.get("nope")                       # ImageNotFound: "no image nope:latest ...; run `labkit image build ...`"
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself costs labkit run an import

__all__ = ["DockerImage", "Image", "ImageError", "ImageNotFound", "ImageStore", "Layer", "RootFS",
           "docker_ref", "normalize_name"]

if TYPE_CHECKING:
    from labkit.images.rootfs import RootFS
    from labkit.images.store import (
        DockerImage,
        Image,
        ImageError,
        ImageNotFound,
        ImageStore,
        Layer,
        docker_ref,
        normalize_name,
    )


def __getattr__(name: str):
    # imported on first use, so that ``labkit run --rm`` finds an image through
    # :mod:`labkit.images.lookup` without importing the store (json, tarfile, hashlib, dataclasses)
    if name == "RootFS":
        from labkit.images.rootfs import RootFS

        return RootFS
    if name in __all__:
        from labkit.images import store

        return getattr(store, name)
    raise AttributeError(f"module 'labkit.images' has no attribute {name!r}")
