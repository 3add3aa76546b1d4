"""A failed build is never green again (issue 8).

jupyter-book's incremental build re-reads only changed pages: a page whose execution failed once
used to pass the next build unseen, its traceback still in the HTML. ``scripts/build-book.py``
(what ``make book`` runs) executes such a page again and fails until the page is fixed. These
tests build a one-page scratch book, not the real one, so they take seconds.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "scripts" / "build-book.py"
PAGE = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
# Scratch

```{{code-cell}} ipython3
{body}
```
"""


def build(book: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BUILD), str(book), "-W", "-n", "--keep-going"],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def scratch_book(tmp_path: Path) -> Path:
    (tmp_path / "_config.yml").write_text(
        "title: scratch\nauthor: t\nonly_build_toc_files: true\n"
        "execute:\n  execute_notebooks: cache\n  allow_errors: false\n  timeout: 60\n")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    (tmp_path / "intro.md").write_text(PAGE.format(body='raise ValueError("broken on purpose")'))
    return tmp_path


def test_a_failed_page_fails_every_build_until_it_is_fixed(scratch_book: Path):
    first = build(scratch_book)
    assert first.returncode != 0, first.stdout[-2000:]
    log = scratch_book / "_build/html/reports/intro.err.log"
    assert log.exists()

    second = build(scratch_book)  # nothing changed: jupyter-book alone would say "build succeeded"
    assert second.returncode != 0, second.stdout[-2000:]
    assert "intro failed in an earlier build" in second.stdout

    (scratch_book / "intro.md").write_text(PAGE.format(body='print("fixed")'))
    fixed = build(scratch_book)
    assert fixed.returncode == 0, fixed.stdout[-3000:] + fixed.stderr[-3000:]
    assert not log.exists(), "the fix must clear the old error log"
    assert "fixed" in (scratch_book / "_build/html/intro.html").read_text()


def test_the_built_book_has_no_execution_error_or_traceback():
    """Every page of the book `make test` just built: no error output, no printed traceback."""
    html = REPO / "_build" / "html"
    if not (html / "index.html").exists():
        pytest.skip("the book is not built here (make test builds it first)")
    spec = importlib.util.spec_from_file_location("build_book", BUILD)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.broken_pages(html) == []
    logs = sorted(str(p.relative_to(html)) for p in (html / "reports").rglob("*.err.log")) \
        if (html / "reports").is_dir() else []
    assert logs == [], f"pages whose execution failed: {logs}"
    assert not [p for p in html.rglob("*.html") if re.search(r'class="output traceback', p.read_text())]
