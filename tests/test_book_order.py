"""Pages that read other pages' results run after them, and again when those results change.

``scripts/build-book.py`` pre-executes the book's pages into jupyter-cache (several at a time), and
a page whose front matter says ``labkit: {after: ...}`` (the comparison tables) runs last. These
tests use a two-page scratch book and no Sphinx, so they take a few kernel starts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from labkit.book import preexecute as pre
from labkit.book.pages import Page, PageOrderError, phases, read_page, toc_files

HEAD = """---
jupytext:
  text_representation: {{extension: .md, format_name: myst}}
kernelspec:
  display_name: Python 3
  language: python
  name: python3
{extra}---
# {title}

```{{code-cell}} ipython3
{body}
```
"""


def page(book: Path, name: str, body: str, extra: str = "") -> None:
    (book / f"{name}.md").write_text(HEAD.format(extra=extra, title=name, body=body))


def test_after_pages_come_last_in_dependency_order(tmp_path: Path) -> None:
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nparts:\n  - chapters:\n    - file: labs/a.md\n    - file: side\n"
        "    - file: summary\n")
    (tmp_path / "labs").mkdir()
    page(tmp_path, "intro", "1")
    page(tmp_path, "labs/a", "1", "labkit:\n  alone: true\n")
    page(tmp_path, "side", "1", "labkit:\n  after: all\n")
    page(tmp_path, "summary", "1", "labkit:\n  after: [side]\n")
    names = toc_files(tmp_path / "_toc.yml")
    assert names == ["intro", "labs/a", "side", "summary"]
    pages = [read_page(tmp_path, n) for n in names]
    first, later = phases([p for p in pages if p])
    assert [p.name for p in first] == ["intro", "labs/a"]
    assert [p.name for p in later] == ["side", "summary"]
    assert [p.name for p in first if p.alone] == ["labs/a"]


def test_an_after_that_cannot_be_honoured_says_which_page_and_why() -> None:
    with pytest.raises(PageOrderError, match="labs/41-swarm, which is not a page"):
        phases([Page("side", Path("side.md"), ["labs/41-swarm"])])
    with pytest.raises(PageOrderError, match="cycle: a, b"):
        phases([Page("a", Path("a.md"), ["b"]), Page("b", Path("b.md"), ["a"])])


def test_a_results_page_runs_after_the_labs_and_again_when_their_records_change(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    book, results = tmp_path / "book", tmp_path / "results"
    book.mkdir()
    (book / "_config.yml").write_text("execute:\n  execute_notebooks: cache\n  timeout: 60\n")
    (book / "_toc.yml").write_text("format: jb-book\nroot: side\nchapters:\n  - file: lab\n")
    page(book, "lab", "from labkit.compare import results\n"
                      "results.record('Swarm', 'scaling', 'docker service scale web=3', '3 tasks', page='lab')")
    page(book, "side", "from labkit.compare import results\nprint(sorted(r.outcome for r in results.load()))",
         "labkit:\n  after: all\n")
    monkeypatch.setenv("LABKIT_RESULTS", str(results))  # the kernels inherit it, as in build-book.py
    s = pre.settings(book, book / "_config.yml", book / "_build")
    side = read_page(book, "side")
    assert side is not None

    def side_output() -> str:
        nb = pre.read_notebook(side, [])
        from jupyter_cache import get_cache

        record = get_cache(str(s.cache)).match_cache_notebook(nb)
        cached = get_cache(str(s.cache)).get_cache_bundle(record.pk).nb
        return "".join(o.get("text", "") for c in cached.cells for o in c.get("outputs", []))

    # the toc lists side first: it still runs after the lab, so it sees the lab's record
    assert pre.preexecute(book, book / "_toc.yml", s, results, jobs=2) == []
    assert side_output().strip() == "['3 tasks']"

    # a lab's record changes (the lab ran again and showed something else): side runs again
    rec = json.loads((results / "swarm-scaling.json").read_text())
    (results / "swarm-scaling.json").write_text(json.dumps({**rec, "outcome": "5 tasks"}))
    os.utime(side.path, (0, 0))
    assert pre.preexecute(book, book / "_toc.yml", s, results, jobs=2) == []
    assert side_output().strip() == "['5 tasks']"
    assert side.path.stat().st_mtime > 0, "its source is touched, so Sphinx reads the page again"

    # nothing changed: nothing runs
    os.utime(side.path, (0, 0))
    assert pre.preexecute(book, book / "_toc.yml", s, results, jobs=2) == []
    assert side.path.stat().st_mtime == 0
