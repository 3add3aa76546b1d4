"""Which pages the book executes, and in what order they may run.

A page says how it must be scheduled in its front matter, under ``labkit``:

* ``after: all`` or ``after: [labs/41-swarm, ...]``: the page reads what other pages' runs recorded
  (:mod:`labkit.compare.results`), so it runs after every page it names (``all``: every page that
  has no ``after`` of its own), and again whenever those records change;
* ``alone: true``: the page cannot share the machine with another page (it measures timing, or
  changes something host-wide), so it runs with nothing beside it.

Everything else may run side by side with other pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

SOURCE_SUFFIXES = (".md", ".ipynb")


class PageOrderError(ValueError):
    """A page's ``labkit`` front matter cannot be honoured; the message says which page and why."""


@dataclass
class Page:
    name: str  # the docname, e.g. "labs/44-borg-lessons"
    path: Path
    after: list[str] = field(default_factory=list)  # docnames, or ["all"]
    alone: bool = False


def toc_files(toc: Path) -> list[str]:
    """Every docname in a jupyter-book ``_toc.yml`` (root first), in reading order."""
    data = yaml.safe_load(toc.read_text()) or {}
    names: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("file"), str):
                names.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key) or []:
                    walk(child)

    if data.get("root"):
        names.append(str(data["root"]))
    walk(data)
    return [str(Path(n).with_suffix("")) if Path(n).suffix in SOURCE_SUFFIXES else n for n in names]


def front_matter(text: str) -> dict:
    """The YAML front matter of a MyST page ({} when there is none)."""
    if not text.startswith("---"):
        return {}
    end = text.find("\n---", 3)
    if end < 0:
        return {}
    data = yaml.safe_load(text[3:end]) or {}
    return data if isinstance(data, dict) else {}


def read_page(book: Path, name: str) -> Page | None:
    """The page's source and its scheduling, or None when it has no source in the book."""
    for suffix in SOURCE_SUFFIXES:
        path = book / (name + suffix)
        if path.is_file():
            break
    else:
        return None
    meta = front_matter(path.read_text()) if path.suffix == ".md" else {}
    lk = meta.get("labkit") or {}
    if not isinstance(lk, dict):
        raise PageOrderError(f"{name}: front matter 'labkit' must be a mapping such as {{after: all}}")
    after = lk.get("after") or []
    if isinstance(after, str):
        after = [after]
    if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
        raise PageOrderError(f"{name}: 'labkit: after' must be 'all' or a list of pages like labs/41-swarm")
    return Page(name, path, [str(Path(a).with_suffix("")) if a != "all" else a for a in after],
                bool(lk.get("alone", False)))


def phases(pages: list[Page]) -> tuple[list[Page], list[Page]]:
    """(pages with no ``after``, pages with one in an order that honours every ``after``).

    Raises :class:`PageOrderError` for an ``after`` that names a page not in the book, or a cycle.
    """
    known = {p.name for p in pages}
    first = [p for p in pages if not p.after]
    later = {p.name: p for p in pages if p.after}
    for p in later.values():
        for a in p.after:
            if a != "all" and a not in known:
                raise PageOrderError(f"{p.name}: 'labkit: after' names {a}, which is not a page of this book "
                                     f"(the names are paths without suffix, as in _toc.yml)")
    ordered: list[Page] = []
    done: set[str] = {p.name for p in first}
    while later:
        ready = [p for p in later.values() if all(a == "all" or a in done for a in p.after)]
        if not ready:
            raise PageOrderError("pages wait for each other in a cycle: " + ", ".join(sorted(later)))
        for p in ready:
            ordered.append(p)
            done.add(p.name)
            del later[p.name]
    return first, ordered
