"""Execute the book's pages several at a time into jupyter-cache, before jupyter-book reads them.

myst-nb's ``cache`` mode executes each page that is not in the cache while Sphinx reads it, one
page after another: on a 2-core machine most of a cold build's minutes are kernels waiting on
clusters. Here the pages that are not cached run in a pool of worker processes, each the way
myst-nb would run it (same notebook, same working directory, same timeout and error rules), and
the executed notebooks go into the same cache, under the same key. jupyter-book then finds every
page cached. A page whose run fails is not cached: myst-nb runs it again and reports it, so the
build's failure rules (scripts/build-book.py) are unchanged.

Pages with ``labkit: {after: ...}`` (:mod:`labkit.book.pages`) run last, and again whenever the
records of :mod:`labkit.compare.results` changed; their source is touched then, so Sphinx reads
them again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import nbformat
import yaml

from labkit.book.pages import Page, phases, read_page, toc_files

RESULTS_KEY = "labkit_results"  # in a cache record's data: the digest of the records the page read


@dataclass
class Settings:
    cache: Path
    timeout: int | None
    allow_errors: bool
    extensions: list[str]
    mode: str  # myst-nb's execute_notebooks: only "cache" is pre-executed


def settings(book: Path, config: Path, build_dir: Path) -> Settings:
    """What myst-nb will use, read from the book's ``_config.yml``."""
    data = (yaml.safe_load(config.read_text()) or {}) if config.is_file() else {}
    execute = data.get("execute") or {}
    cache = execute.get("cache") or ""
    return Settings(
        cache=Path(cache) if cache else build_dir / ".jupyter_cache",
        timeout=execute.get("timeout", 30),
        allow_errors=bool(execute.get("allow_errors", False)),
        extensions=list((data.get("parse") or {}).get("myst_enable_extensions") or []),
        mode=str(execute.get("execute_notebooks", "auto")),
    )


def results_digest(results: Path) -> str:
    """A digest of the comparison records, leaving out when each was written."""
    h = hashlib.sha256()
    for p in sorted(results.glob("*.json")) if results.is_dir() else []:
        try:
            rec = json.loads(p.read_text())
        except ValueError:
            continue
        if isinstance(rec, dict):
            rec.pop("when", None)
        h.update(p.name.encode() + b"\0" + json.dumps(rec, sort_keys=True).encode() + b"\0")
    return h.hexdigest()


def read_notebook(page: Page, extensions: list[str]) -> nbformat.NotebookNode | None:
    """The page as myst-nb reads it (None: a Markdown page that is not a notebook)."""
    text = page.path.read_text()
    if page.path.suffix == ".ipynb":
        return nbformat.reads(text, as_version=4)
    from myst_nb.core.read import is_myst_markdown_notebook, read_myst_markdown_notebook
    from myst_parser.config.main import MdParserConfig

    if not is_myst_markdown_notebook(text):
        return None
    return read_myst_markdown_notebook(text, config=MdParserConfig(enable_extensions=set(extensions)),
                                       add_source_map=True, path=str(page.path))


def _execute(nb: nbformat.NotebookNode, cwd: str, timeout: int | None, allow_errors: bool) -> tuple:
    """In a worker process: run the notebook as myst-nb does; (notebook, seconds, error text)."""
    from jupyter_cache.executors.utils import single_nb_execution

    result = single_nb_execution(nb, cwd=cwd, timeout=timeout, allow_errors=allow_errors, meta_override=True)
    return result.nb, result.time, result.exc_string if result.err is not None else None


def default_jobs() -> int:
    """``$LABKIT_BOOK_JOBS``, else one more than the CPUs: most of a page's time is waiting."""
    env = os.environ.get("LABKIT_BOOK_JOBS", "")
    if env.strip():
        try:
            return max(1, int(env))
        except ValueError:
            raise SystemExit(f"LABKIT_BOOK_JOBS={env!r}: give a whole number of pages to run at once") from None
    return (os.cpu_count() or 1) + 1


def log(msg: str) -> None:
    print(f"book: {msg}", flush=True)


def preexecute(book: Path, toc: Path, s: Settings, results: Path, jobs: int,
               leave: frozenset[str] = frozenset()) -> list[str]:
    """Run every uncached page (``jobs`` at a time) into the cache; return the pages that failed.

    ``leave``: pages that failed in an earlier build; myst-nb runs them (again) and reports them, so
    running them here as well would only run a broken page twice.
    """
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    if s.mode != "cache":
        return []
    pages = [p for p in (read_page(book, n) for n in toc_files(toc)) if p is not None]
    first, later = phases(pages)
    cache = get_cache(str(s.cache))
    failed: list[str] = []

    def cached(nb: nbformat.NotebookNode):
        try:
            return cache.match_cache_notebook(nb)
        except KeyError:
            return None

    def store(page: Page, nb: nbformat.NotebookNode, seconds: float, error: str | None, data: dict) -> None:
        if error is not None:
            failed.append(page.name)
            log(f"{page.name} FAILED after {seconds:.1f} s (jupyter-book runs it again and reports it)")
            return
        cache.cache_notebook_bundle(CacheBundleIn(nb, str(page.path), data={"execution_seconds": seconds, **data}),
                                    check_validity=False, overwrite=True)
        log(f"{page.name} executed in {seconds:.1f} s")

    todo: list[tuple[Page, nbformat.NotebookNode]] = []
    for page in first:
        if page.name in leave:
            continue
        nb = read_notebook(page, s.extensions)
        if nb is not None and cached(nb) is None:
            todo.append((page, nb))
    if len(todo) <= 1 and not later:
        return []  # nothing to run side by side and nothing to order: myst-nb runs it, as it would anyway
    together = [t for t in todo if not t[0].alone]
    alone = [t for t in todo if t[0].alone]
    t0 = time.monotonic()
    if todo:
        log(f"executing {len(todo)} pages, {min(jobs, len(together)) or 1} at a time"
            + (f" (then {len(alone)} alone: {', '.join(p.name for p, _ in alone)})" if alone else ""))
    def run(page: Page, nb: nbformat.NotebookNode) -> tuple:
        return _execute(nb, str(page.path.parent), s.timeout, s.allow_errors)

    if len(together) > 1 and jobs > 1:
        # spawn, not fork: the parent holds jupyter-cache's sqlite connection
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            running: dict[Future, Page] = {}
            queue = list(together)
            while queue or running:
                while queue and len(running) < jobs:
                    page, nb = queue.pop(0)
                    running[pool.submit(_execute, nb, str(page.path.parent), s.timeout, s.allow_errors)] = page
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    store(running.pop(fut), *fut.result(), {})
    else:
        alone = together + alone
    for page, nb in alone:  # in this process, one at a time
        store(page, *run(page, nb), {})

    digest = results_digest(results)
    for page in later:
        nb = read_notebook(page, s.extensions)
        if nb is None:
            continue
        record = cached(nb)
        if record is not None and (record.data or {}).get(RESULTS_KEY) == digest:
            continue
        store(page, *run(page, nb), {RESULTS_KEY: digest})
        os.utime(page.path)  # Sphinx reads it again, and myst-nb takes the new run from the cache
    if todo:
        log(f"pages executed in {time.monotonic() - t0:.1f} s")
    return failed


if __name__ == "__main__":  # python -m labkit.book.preexecute BOOK: pre-execute with the book's own files
    b = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    st = settings(b, b / "_config.yml", b / "_build")
    sys.exit(1 if preexecute(b, b / "_toc.yml", st, b / "_build" / "results", default_jobs()) else 0)
