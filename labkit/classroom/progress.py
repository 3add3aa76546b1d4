"""The live progress page: a grid of students × exercises that fills in as students pass.

Served by the class server on its own port (aiohttp). The page is one HTML document with its
script inline (no CDN: it works in a room with no internet); the script polls ``/progress.json``
once a second and changes only the cells whose state changed, so the page never reloads and a
teacher can leave it on the projector. The JSON is built from the gradebook file, so a
``labkit class check`` run from a shell shows up as well as the server's own rounds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from html import escape
from pathlib import Path

from aiohttp import web

from labkit.classroom import gradebook
from labkit.classroom.roster import Student

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title><link rel="icon" href="data:,">
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #bbb; padding: .35em .7em; text-align: center; }}
td.passed {{ background: #b8e6b8; }}
td.notyet {{ background: #f6f6f6; color: #777; }}
#updated {{ color: #666; font-size: .85em; }}
</style></head>
<body>
<h1>{title}</h1>
<table id="grid"><thead><tr><th>student</th>{heads}</tr></thead><tbody>{rows}</tbody></table>
<p id="updated">waiting for the first check</p>
<script>
"use strict";
window.loadedAt = Date.now();
async function refresh() {{
  try {{
    const r = await fetch("progress.json", {{cache: "no-store"}});
    const data = await r.json();
    for (const row of data.cells) {{
      const cell = document.getElementById("cell-" + row.student + "-" + row.exercise);
      if (!cell) continue;
      const cls = row.passed ? "passed" : "notyet";
      if (cell.className !== cls) {{
        cell.className = cls;
        cell.textContent = row.passed ? "passed" : "not yet";
      }}
      cell.title = row.when ? "checked " + row.when : "";
    }}
    document.getElementById("updated").textContent = "last check " + (data.updated || "none yet");
  }} catch (e) {{
    document.getElementById("updated").textContent = "class server not answering: " + e;
  }}
}}
refresh();
setInterval(refresh, 1000);
</script>
</body></html>
"""


def page(title: str, students: list[Student], exercises: list[str]) -> str:
    heads = "".join(f"<th>{escape(e)}</th>" for e in exercises)
    rows = "".join(
        f"<tr><th>{escape(s.name)}</th>"
        + "".join(f'<td id="cell-{escape(s.name)}-{escape(e)}" class="notyet">not yet</td>' for e in exercises)
        + "</tr>" for s in students)
    return PAGE.format(title=escape(title), heads=heads, rows=rows)


def snapshot(gradebook_path: Path, students: list[Student], exercises: list[str]) -> dict:
    """What the page shows: every cell's state, from the gradebook."""
    rows = gradebook.read(gradebook_path)
    cells = []
    for s in students:
        for e in exercises:
            r = rows.get((s.name, e))
            cells.append({"student": s.name, "exercise": e, "passed": bool(r and r.passed),
                          "when": r.when if r else None})
    updated = max((r.when for r in rows.values()), default=None)
    return {"students": [s.name for s in students], "exercises": exercises, "cells": cells, "updated": updated}


def app(title: str, students: list[Student], exercises: list[str], gradebook_path: Path,
        check_now: Callable[[], object] | None = None) -> web.Application:
    """The progress page's routes: ``/`` (the page), ``/progress.json`` and ``POST /check`` (a round now)."""
    html = page(title, students, exercises)

    async def index(_: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    async def progress(_: web.Request) -> web.Response:
        return web.Response(text=json.dumps(snapshot(gradebook_path, students, exercises)),
                            content_type="application/json", headers={"Cache-Control": "no-store"})

    async def check(_: web.Request) -> web.Response:
        if check_now is None:
            raise web.HTTPNotFound(text="this server runs no checks")
        check_now()
        return web.json_response({"queued": True}, status=202)

    a = web.Application()
    a.router.add_get("/", index)
    a.router.add_get("/progress.json", progress)
    a.router.add_post("/check", check)
    return a
