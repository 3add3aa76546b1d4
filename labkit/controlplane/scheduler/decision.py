"""One scheduling decision and *why*: every plugin's verdict on every node.

Like kube-scheduler-simulator's annotations, but kept as arrays until someone asks, so the
scheduler pays nothing for the explanation when nobody reads it.
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from labkit.controlplane.scheduler.plugins import Reasons


@dataclass
class Decision:
    pod: str  # namespace/name
    node: str | None
    names: list[str]  # node names, in slot order of the arrays below
    filters: list[tuple[str, np.ndarray, Reasons]] = field(default_factory=list)
    scores: list[tuple[str, int, np.ndarray]] = field(default_factory=list)
    slots: np.ndarray | None = None  # slot index of each name
    total: np.ndarray | None = None

    @property
    def feasible(self) -> list[str]:
        return [n for n, ok in zip(self.names, self._feasible_mask(), strict=True) if ok]

    def _feasible_mask(self) -> np.ndarray:
        ok = np.ones(len(self.names), dtype=bool)
        for _, mask, _ in self.filters:
            ok &= mask[self.slots]
        return ok

    def failures(self) -> dict[str, tuple[str, list[str]]]:
        """node -> (first failing plugin, its reasons) for every node that was filtered out."""
        out: dict[str, tuple[str, list[str]]] = {}
        for j, name in enumerate(self.names):
            i = int(self.slots[j])
            for plugin, mask, reasons in self.filters:
                if not mask[i]:
                    out[name] = (plugin, reasons(i))
                    break
        return out

    def message(self) -> str:
        """The FailedScheduling text kube-scheduler writes: "0/3 nodes are available: 1 Insufficient cpu, ..."."""
        n = len(self.names)
        if self.node:
            return f"Successfully assigned {self.pod} to {self.node}"
        hist: Counter[str] = Counter()
        for _, reasons in self.failures().values():
            for r in reasons:
                hist[r] += 1
        parts = ", ".join(f"{c} {r}" for r, c in sorted(hist.items()))
        if n == 0:
            return "no nodes available to schedule pods"
        return f"0/{n} nodes are available: {parts}."

    def why(self, node: str) -> str:
        """One node's story in a sentence."""
        fail = self.failures().get(node)
        if fail:
            return f"{node}: filtered out by {fail[0]} ({'; '.join(fail[1])})"
        j = self.names.index(node)
        s = ", ".join(f"{name}={float(arr[self.slots[j]]):.0f}x{w}" for name, w, arr in self.scores)
        verdict = "chosen" if node == self.node else "feasible"
        return f"{node}: {verdict}, score {float(self.total[self.slots[j]]):.0f} ({s})"

    def table(self) -> list[dict]:
        """One row per node: each filter's verdict, each score, the weighted total, and the pick."""
        fails = self.failures()
        rows = []
        for j, name in enumerate(self.names):
            i = int(self.slots[j])
            row: dict = {"node": name}
            for plugin, mask, reasons in self.filters:
                row[plugin] = "pass" if mask[i] else "; ".join(reasons(i))
            for plugin, _w, arr in self.scores:  # a plugin that filters and scores gets two columns
                col = f"{plugin} score" if plugin in row else plugin
                row[col] = None if name in fails else round(float(arr[i]))
            row["total"] = None if name in fails else round(float(self.total[i]))
            row["chosen"] = name == self.node
            rows.append(row)
        return rows

    def __repr__(self) -> str:
        return self.__str__()

    def __str__(self) -> str:
        rows = self.table()
        if not rows:
            return f"{self.pod}: {self.message()}"
        cols = list(rows[0])
        cells = [[_cell(r[c]) for c in cols] for r in rows]
        width = [max(len(c), *(len(row[k]) for row in cells)) for k, c in enumerate(cols)]
        line = "  ".join(c.ljust(w) for c, w in zip(cols, width, strict=True))
        body = ["  ".join(v.ljust(w) for v, w in zip(row, width, strict=True)) for row in cells]
        return "\n".join([f"pod {self.pod} -> {self.node or 'nowhere'}", line, *body, self.message()])

    def _repr_html_(self) -> str:
        rows = self.table()
        if not rows:
            return f"<p>{html.escape(self.message())}</p>"
        cols = list(rows[0])
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        body = "".join(
            "<tr" + (' style="font-weight:bold"' if r["chosen"] else "") + ">"
            + "".join(f"<td>{html.escape(_cell(r[c]))}</td>" for c in cols) + "</tr>" for r in rows
        )
        return (f"<p>pod <code>{html.escape(self.pod)}</code> &rarr; <b>{html.escape(self.node or 'nowhere')}</b></p>"
                f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
                f"<p><i>{html.escape(self.message())}</i></p>")


def _cell(v: object) -> str:
    if v is None:
        return "-"
    if v is True:
        return "<=="
    if v is False:
        return ""
    return str(v)
