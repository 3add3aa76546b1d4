"""Regenerate the Python protobuf/gRPC modules of the Node's plug points from their .proto files.

The generated ``*_pb2.py`` files are committed, so readers need no compiler; run this after
editing a ``.proto``:  ``.venv/bin/python -m labkit.node.cri.protogen``.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROTOS = [
    "labkit/node/cri/api.proto",
    "labkit/node/cri/labkit_ext.proto",
    "labkit/csi/csi.proto",
    "labkit/node/deviceplugin/api.proto",
]


def regenerate() -> None:
    """Run grpcio-tools' protoc with the repository root as include path (absolute imports)."""
    import grpc_tools
    from grpc_tools import protoc

    root = Path(__file__).resolve().parents[3]
    well_known = str(Path(grpc_tools.__file__).parent / "_proto")
    for proto in PROTOS:
        rc = protoc.main(
            ["protoc", f"-I{root}", f"-I{well_known}", f"--python_out={root}", f"--grpc_python_out={root}", str(root / proto)]
        )
        if rc != 0:
            sys.exit(f"protoc failed on {proto}")
        print("generated", proto)


if __name__ == "__main__":
    regenerate()
