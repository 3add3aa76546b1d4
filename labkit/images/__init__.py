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

__all__ = ["DockerImage", "Image", "ImageError", "ImageNotFound", "ImageStore", "Layer", "RootFS",
           "docker_ref", "normalize_name"]
