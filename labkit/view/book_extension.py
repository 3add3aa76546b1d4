"""A small Sphinx extension the book's build loads (``sphinx.extra_extensions`` in ``_config.yml``).

Jupyter Book 1.x with Sphinx 7.4 adds sphinx-thebe's inline configuration script twice to every
page; the second copy re-declares a ``const`` and the browser reports a SyntaxError on every page.
The static site must open with no console errors, so each page's script list is de-duplicated
just before it is written.
"""

from __future__ import annotations

from typing import Any


def _dedupe_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    unique = []
    for script in scripts:
        attrs = getattr(script, "attributes", {}) or {}
        # One copy carries filename None, the other "": both mean "inline script".
        name = getattr(script, "filename", script) or ""
        key = (str(name), tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(script)
    scripts[:] = unique


def setup(app: Any) -> dict:
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
