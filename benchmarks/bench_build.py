"""How long the book takes to build: cold (every notebook executed, empty Jupyter cache) and cached
(nothing changed), in one run, on a temporary copy of the book so the real _build is untouched.

    .venv/bin/python benchmarks/bench_build.py [--flags "-W -n --keep-going"] [--jobs N]

It builds through scripts/build-book.py, as `make book` does, so the pages are executed several at
a time (``--jobs 1``: one at a time, as the build did before).

Goals (issue 2): cold build <= 5 minutes for the whole book, cached rebuild <= 30 s.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = {".git", ".venv", "_build", ".pytest_cache", ".ruff_cache", "__pycache__", "labkit.egg-info"}
GOALS = {"cold": 300.0, "cached": 30.0}


def copy_book(dest: Path) -> None:
    """Copy the sources a build reads (not the venv, not earlier builds, not their caches)."""
    shutil.copytree(ROOT, dest, ignore=lambda d, names: [n for n in names if n in SKIP])


def build(book: Path, flags: list[str]) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(book / "scripts" / "build-book.py"), str(book), *flags],
                          capture_output=True, text=True, check=False)
    return time.perf_counter() - t0, proc.returncode, proc.stdout[-2000:] + proc.stderr[-2000:]


def slowest_pages(book: Path, top: int = 10) -> list[tuple[float, str]]:
    """Execution seconds per page, from the Jupyter cache the cold build filled."""
    from jupyter_cache import get_cache

    cache = book / "_build" / ".jupyter_cache"
    if not cache.exists():
        return []
    records = get_cache(str(cache)).list_cache_records()
    rows = [((r.data or {}).get("execution_seconds", 0.0), str(Path(r.uri).relative_to(book))) for r in records]
    return sorted(rows, reverse=True)[:top]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", default="-W -n --keep-going", help="jupyter-book build flags")
    parser.add_argument("--jobs", type=int, default=None, help="pages executed at once (default: CPUs + 1)")
    args = parser.parse_args()
    flags = shlex.split(args.flags) + (["--jobs", str(args.jobs)] if args.jobs else [])
    pages = len(list((ROOT / "chapters").glob("*.md")) + list((ROOT / "labs").glob("*.md"))) + 1
    with tempfile.TemporaryDirectory(prefix="labkit-bench-build-") as tmp:
        book = Path(tmp) / "book"
        copy_book(book)
        results = {}
        for kind in ("cold", "cached"):
            seconds, rc, tail = build(book, flags)
            results[kind] = seconds
            status = "ok" if rc == 0 else f"FAILED (exit {rc})"
            print(f"{kind:7} build: {seconds:7.1f} s  ({status})")
            if rc != 0:
                print(tail)
            if kind == "cold":
                for seconds_, page in slowest_pages(book):
                    print(f"          {seconds_:6.1f} s executing {page}")
    print(f"\n{pages} pages, flags: {' '.join(flags)}")
    print(f"{'':7}  {'measured':>9}  {'goal':>7}  {'ratio to goal':>13}")
    for kind, seconds in results.items():
        goal = GOALS[kind]
        verdict = "meets" if seconds <= goal else "MISSES"
        print(f"{kind:7}  {seconds:8.1f}s  {goal:6.0f}s  {seconds / goal:12.2f}x  {verdict} the goal")
    print(f"cached / cold: {results['cached'] / results['cold']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
