#!/usr/bin/env python
"""Execute one MyST Markdown page of the book the way the build does, and show its outputs.

    .venv/bin/python scripts/run-page.py labs/02-limits.md

Faster than a whole-book build while writing a lab; exits non-zero on the first failing cell.
"""

import sys
import time
from pathlib import Path

import nbclient
import nbformat
from myst_nb.core.read import read_myst_markdown_notebook


def main(path: str) -> int:
    page = Path(path)
    nb = read_myst_markdown_notebook(page.read_text())
    t0 = time.perf_counter()
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(page.parent)}})
    try:
        client.execute()
        ok = True
    except nbclient.exceptions.CellExecutionError as exc:
        print(exc)
        ok = False
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        print("-" * 70)
        print(cell.source)
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                print(out.text, end="")
            elif "data" in out:
                print(out.data.get("text/plain", "<" + ",".join(out.data) + ">"))
            elif out.output_type == "error":
                print("ERROR", out.ename, out.evalue)
    print(f"== {page}: {'ok' if ok else 'FAILED'} in {time.perf_counter() - t0:.1f} s")
    nbformat.write(nb, "/tmp/last-page.ipynb")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(max(main(p) for p in sys.argv[1:]))
