"""How big each box of the architecture diagram is in labkit: a table for chapter 6."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def python_lines(module: str) -> str:
    """Lines of hand-written Python behind ``module`` (generated gRPC code is left out)."""
    if not module.startswith("labkit"):
        return "(the kernel)"
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        return "not present"
    folder = Path(spec.origin).parent if spec.origin.endswith("__init__.py") else Path(spec.origin)
    files = list(folder.rglob("*.py")) if folder.is_dir() else [folder]
    files = [f for f in files if not f.name.endswith(("_pb2.py", "_pb2_grpc.py"))]
    return f"{sum(len(f.read_text().splitlines()) for f in files):,} lines"


def table() -> str:
    """Component, labkit module, size and the lab that runs it, one per line."""
    from labkit.view.diagrams import COMPONENTS

    rows = [f"{'component':26}{'labkit module':34}{'size':>14}   lab"]
    rows += [f"{c:26}{m:34}{python_lines(m):>14}   {lab}" for c, m, lab in COMPONENTS]
    return "\n".join(rows)
