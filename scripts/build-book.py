#!/usr/bin/env python
"""Build the book with jupyter-book, so that a page whose execution failed fails every later build.

    python scripts/build-book.py BOOK_DIR [jupyter-book build flags ...]

What `make book` runs. jupyter-book's incremental build re-reads only changed pages, so a page that
failed once (its traceback in the HTML, its log in ``_build/html/reports``) would pass the next
build unseen. The rule here:

1. before the build, every page with an error log in ``reports`` is touched, so Sphinx reads it
   again and myst-nb executes it again (a failed run is never in jupyter-cache), and its log is
   removed: myst-nb writes a new one if the page fails again;
2. after the build, a page fails when it has an error log, or when its HTML holds an execution
   error or a traceback. So fixing the page is what clears it.

(An earlier version compared the log's time with the build's start; two builds run back to back
within a second then took the old log for a new one.)

Before jupyter-book reads the pages, :mod:`labkit.book.preexecute` executes every page that is not
in the execution cache, several at a time (``--jobs N`` or ``$LABKIT_BOOK_JOBS``; default: CPUs + 1),
and pages marked ``labkit: {after: ...}`` last. A page that fails there is left out of the cache, so
myst-nb runs it again during the build and rule 2 applies to it as before.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

SOURCE_SUFFIXES = (".md", ".ipynb", ".rst")
# myst-nb renders an execution error as an output of class "traceback"; a traceback printed by a
# cell (a child process that crashed, say) is just as broken for a reader
BROKEN = re.compile(r'class="output traceback|Traceback \(most recent call last\)')


def build_dir(book: Path, flags: list[str]) -> Path:
    """Where jupyter-book writes: ``BOOK/_build``, or ``--path-output DIR`` + ``/_build``."""
    for i, flag in enumerate(flags):
        if flag == "--path-output" and i + 1 < len(flags):
            return Path(flags[i + 1]) / "_build"
        if flag.startswith("--path-output="):
            return Path(flag.split("=", 1)[1]) / "_build"
    return book / "_build"


def error_logs(html: Path) -> dict[str, Path]:
    """Page (its path without suffix, relative to the book) -> its error log."""
    reports = html / "reports"
    if not reports.is_dir():
        return {}
    return {str(log.relative_to(reports))[: -len(".err.log")]: log for log in reports.rglob("*.err.log")}


def broken_pages(html: Path) -> list[str]:
    """Built pages (relative paths) whose HTML holds an execution error or a traceback."""
    return sorted(str(p.relative_to(html)) for p in html.rglob("*.html")
                  if "reports" not in p.relative_to(html).parts and BROKEN.search(p.read_text(errors="replace")))


def flag_value(flags: list[str], name: str) -> str | None:
    """The value of ``--name VALUE`` or ``--name=VALUE`` among jupyter-book's flags."""
    for i, flag in enumerate(flags):
        if flag == name and i + 1 < len(flags):
            return flags[i + 1]
        if flag.startswith(name + "="):
            return flag.split("=", 1)[1]
    return None


def take_jobs(flags: list[str]) -> tuple[int | None, list[str]]:
    """``--jobs N`` is this script's own flag: (N or None, the flags left for jupyter-book)."""
    value = flag_value(flags, "--jobs")
    if value is None:
        return None, flags
    rest = [f for i, f in enumerate(flags)
            if not (f == "--jobs" or f.startswith("--jobs=") or (i > 0 and flags[i - 1] == "--jobs"))]
    try:
        return max(1, int(value)), rest
    except ValueError:
        raise SystemExit(f"--jobs {value!r}: give a whole number of pages to run at once") from None


def source_of(book: Path, page: str) -> Path | None:
    for suffix in SOURCE_SUFFIXES:
        if (book / (page + suffix)).is_file():
            return book / (page + suffix)
    return None


def main(argv: list[str]) -> int:
    book = Path(argv[0] if argv else ".").resolve()
    jobs, flags = take_jobs(argv[1:])
    html = build_dir(book, flags) / "html"
    failed_before = error_logs(html)
    for page, log in failed_before.items():
        src = source_of(book, page)
        if src is not None:
            print(f"build: {page} failed in an earlier build: executing it again")
            os.utime(src)
        log.unlink()  # a page that fails again gets a new one; a page that is gone needs none
    from labkit.book import preexecute as pre
    from labkit.book.pages import PageOrderError

    config = Path(flag_value(flags, "--config") or book / "_config.yml")
    toc = Path(flag_value(flags, "--toc") or book / "_toc.yml")
    settings = pre.settings(book, config, html.parent)
    # the comparison records sit beside the cache the pages are executed into; the kernels write there
    results = Path(os.environ.setdefault("LABKIT_RESULTS", str(settings.cache.parent / "results")))
    try:
        pre.preexecute(book, toc, settings, results, jobs or pre.default_jobs(), frozenset(failed_before))
    except PageOrderError as exc:
        print(f"build: FAILED: {exc}")
        return 1
    except Exception as exc:  # noqa: BLE001 - the build below still executes every page, one at a time
        print(f"build: executing pages ahead failed ({type(exc).__name__}: {exc}); jupyter-book runs them one by one")
    # through this interpreter, not the jupyter-book script: a copied venv's scripts name the old path
    jb = [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())"]
    rc = subprocess.run([*jb, "build", str(book), *flags], check=False).returncode

    failed = list(error_logs(html))
    broken = broken_pages(html)
    for page in sorted(set(failed)):
        print(f"build: FAILED: {page} (its execution failed; see {html / 'reports' / (page + '.err.log')})")
    for page in broken:
        print(f"build: FAILED: {page} holds an execution error or a traceback")
    if rc == 0 and (failed or broken):
        return 1
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
