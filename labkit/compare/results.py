"""What each lab's run did, kept so that the book's comparison tables are generated from runs.

A lab calls :func:`record` after it has shown a feature running on one system ("scaling on Swarm:
``docker service scale web=5``, 3.1 s"). A comparison page calls :func:`table`, which reads every
record of this build and says, for each cell, what ran and what it took, or that nothing ran. A
system that the book describes but does not run (a classic PaaS) gets :func:`describe` entries,
which the table marks as described.

Records live in ``$LABKIT_RESULTS`` or, in a checkout of the book, ``_build/results/``: one JSON
file per system and feature, so a page run again replaces its own cells.
"""

from __future__ import annotations

import html
import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from labkit.paths import state_dir


@dataclass(frozen=True)
class Result:
    system: str  # "toy Kubernetes", "Swarm", "Mesos", "Borg-style", "classic PaaS"
    feature: str  # "routing gateway", "scaling", ...
    ran: str  # what was run, e.g. "kubectl autoscale deployment web --max 5"
    outcome: str  # what the run showed, e.g. "2 -> 5 replicas under load"
    seconds: float | None  # what it took, where that is meaningful
    ok: bool  # the feature worked on that system in this run
    page: str  # the lab that ran it
    described: bool = False  # True: no run; the book describes it from documentation
    when: float = 0.0


def results_dir() -> Path:
    """Where this build's records go (``$LABKIT_RESULTS`` overrides)."""
    if os.environ.get("LABKIT_RESULTS"):
        d = Path(os.environ["LABKIT_RESULTS"])
    else:
        repo = Path(__file__).resolve().parents[2]
        d = repo / "_build" / "results" if (repo / "_config.yml").exists() else state_dir() / "results"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _file(system: str, feature: str) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", f"{system}--{feature}".lower()).strip("-")
    return results_dir() / f"{slug}.json"


def record(system: str, feature: str, ran: str, outcome: str, *, seconds: float | None = None,
           ok: bool = True, page: str = "", described: bool = False) -> Result:
    """Keep what a run showed; call it only after the run has shown it."""
    r = Result(system, feature, ran, outcome, None if seconds is None else round(seconds, 2), ok, page,
               described, time.time())
    path = _file(system, feature)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(r), indent=1))
    tmp.replace(path)
    return r


def describe(system: str, feature: str, outcome: str, source: str) -> Result:
    """An entry for a system the book does not run; the table marks it as described."""
    return record(system, feature, "(not run)", f"{outcome} (source: {source})", described=True)


def load() -> list[Result]:
    out = []
    for p in sorted(results_dir().glob("*.json")):
        try:
            out.append(Result(**json.loads(p.read_text())))
        except (ValueError, TypeError):
            continue  # a half-written or old-format file is not a result
    return out


def table(systems: list[str], features: list[str], results: list[Result] | None = None) -> str:
    """An HTML table, feature by system: what ran, what it showed, what it took, or "not run"."""
    by = {(r.system, r.feature): r for r in (load() if results is None else results)}
    rows = ["<table class='lk-compare'><thead><tr><th>feature</th>"
            + "".join(f"<th>{html.escape(s)}</th>" for s in systems) + "</tr></thead><tbody>"]
    for f in features:
        cells = []
        for s in systems:
            r = by.get((s, f))
            if r is None:
                cells.append("<td><em>not run in this build</em></td>")
                continue
            mark = "described, not run" if r.described else ("ran" if r.ok else "failed")
            took = f", {r.seconds:g} s" if r.seconds is not None else ""
            page = f" ({html.escape(r.page)})" if r.page else ""
            cells.append(f"<td><strong>{mark}</strong>{took}{page}<br><code>{html.escape(r.ran)}</code>"
                         f"<br>{html.escape(r.outcome)}</td>")
        rows.append(f"<tr><th>{html.escape(f)}</th>{''.join(cells)}</tr>")
    rows.append("</tbody></table>")
    return "\n".join(rows)
