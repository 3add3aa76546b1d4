"""A metric over time as an inline SVG line chart: it renders in a notebook and in the static site
alike (no JavaScript, no CDN), so a lab can plot what its own run measured.

    svg = chart({"replicas": [(0, 1), (5, 3)]}, title="web", y_label="pods")
    IPython.display.SVG(svg)
"""

from __future__ import annotations

import html

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


def _nice_max(v: float, steps: tuple[float, ...] = (1, 2, 4, 8, 10)) -> float:
    """The smallest ``m x 10^k`` (m from ``steps``) at or above ``v``: an axis that ends on a round number
    and divides into round ticks (4 for y, with 1, 2, 4, 8; 5 for x)."""
    if v <= 0:
        return 1.0
    k = 1.0
    while k * 10 <= v:
        k *= 10
    while k > v:
        k /= 10
    for m in steps:
        if m * k >= v:
            return m * k
    return 10 * k


def chart(series: dict[str, list[tuple[float, float]]], *, title: str = "", y_label: str = "",
          x_label: str = "seconds", width: int = 640, height: int = 260, steps: tuple[str, ...] = (),
          right: dict[str, list[tuple[float, float]]] | None = None, right_label: str = "") -> str:
    """SVG text: each series a line (``steps``: drawn as steps, for counts such as replicas); ``right``
    series use a second y axis on the right."""
    left_pad, right_pad, top, bottom = 56, 56 if right else 16, 28, 40
    w, h = width - left_pad - right_pad, height - top - bottom
    every = [p for s in list(series.values()) + list((right or {}).values()) for p in s]
    x_max = _nice_max(max((x for x, _ in every), default=1.0), (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10))
    y_max = _nice_max(max((y for s in series.values() for _, y in s), default=1.0))
    r_max = _nice_max(max((y for s in (right or {}).values() for _, y in s), default=1.0))

    def px(x: float) -> float:
        return left_pad + w * x / x_max

    def py(y: float, top_value: float) -> float:
        return top + h - h * y / top_value

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{html.escape(title)}</text>',
           f'<line x1="{left_pad}" y1="{top + h}" x2="{left_pad + w}" y2="{top + h}" stroke="#333"/>',
           f'<line x1="{left_pad}" y1="{top}" x2="{left_pad}" y2="{top + h}" stroke="#333"/>']
    for i in range(5):
        v = y_max * i / 4
        y = py(v, y_max)
        out.append(f'<line x1="{left_pad}" y1="{y:.1f}" x2="{left_pad + w}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left_pad - 4}" y="{y + 4:.1f}" text-anchor="end">{v:g}</text>')
        if right:
            rv = r_max * i / 4
            out.append(f'<text x="{left_pad + w + 4}" y="{y + 4:.1f}">{rv:g}</text>')
    for i in range(6):
        x = x_max * i / 5
        out.append(f'<text x="{px(x):.1f}" y="{top + h + 14}" text-anchor="middle">{x:g}</text>')
    out.append(f'<text x="{left_pad + w / 2}" y="{height - 6}" text-anchor="middle">{html.escape(x_label)}</text>')
    out.append(f'<text x="12" y="{top + h / 2}" transform="rotate(-90 12 {top + h / 2})" '
               f'text-anchor="middle">{html.escape(y_label)}</text>')
    if right:
        xr = width - 8
        out.append(f'<text x="{xr}" y="{top + h / 2}" transform="rotate(90 {xr} {top + h / 2})" '
                   f'text-anchor="middle">{html.escape(right_label)}</text>')
    lines = [(n, s, y_max, False) for n, s in series.items()] + [(n, s, r_max, True) for n, s in (right or {}).items()]
    for i, (name, points, top_value, dashed) in enumerate(lines):
        colour = COLOURS[i % len(COLOURS)]
        pts: list[tuple[float, float]] = []
        for j, (x, y) in enumerate(sorted(points)):
            if name in steps and j:
                pts.append((px(x), pts[-1][1]))
            pts.append((px(x), py(y, top_value)))
        if pts:
            dash = ' stroke-dasharray="5 3"' if dashed else ""
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="'
                       + " ".join(f"{x:.1f},{y:.1f}" for x, y in pts) + '"/>')
        lx = left_pad + 8 + 150 * i
        out.append(f'<line x1="{lx}" y1="{top + 8}" x2="{lx + 18}" y2="{top + 8}" stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{lx + 22}" y="{top + 12}">{html.escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)
