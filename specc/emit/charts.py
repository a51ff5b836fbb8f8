"""Charts for the docs site, drawn from their data: a grouped bar chart as
inline SVG with its title and axis labels at reading size, the sentence that
says what it shows, and the same numbers as a table beside it.

A chart is described in JSON (``"chart"`` in a benchmark's result file)::

    {"title": "...", "summary": "one sentence: what the chart shows",
     "x": {"label": "buffer size", "categories": ["64 B", "4 KiB"]},
     "y": {"label": "MB/s end to end", "scale": "log"},
     "series": [{"name": "none", "values": [21.6, 640.2]}, ...]}
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

PALETTE = ("#4d4d4d", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b")
W, H = 820, 460
LEFT, RIGHT, TOP, BOTTOM = 96, 20, 56, 104
FONT = 15


class ChartError(ValueError):
    """A chart description that cannot be drawn (one line)."""


@dataclass(frozen=True)
class Series:
    name: str
    values: tuple[float | None, ...]


@dataclass(frozen=True)
class Chart:
    title: str
    summary: str
    x_label: str
    categories: tuple[str, ...]
    y_label: str
    log: bool
    series: tuple[Series, ...]


def _text(d: dict, key: str, where: str) -> str:
    v = d.get(key)
    if not isinstance(v, str) or not v.strip():
        raise ChartError(f"{where}: '{key}' must be a non-empty string")
    return v


def parse_chart(d: object, where: str) -> Chart:
    """A chart from its JSON description; ChartError names what is wrong."""
    if not isinstance(d, dict):
        raise ChartError(f"{where}: 'chart' must be an object")
    x, y = d.get("x"), d.get("y")
    if not isinstance(x, dict) or not isinstance(y, dict):
        raise ChartError(f"{where}: a chart needs 'x' and 'y' objects")
    cats = x.get("categories")
    if not isinstance(cats, list) or not cats or not all(isinstance(c, str) for c in cats):
        raise ChartError(f"{where}: 'x.categories' must be a non-empty list of strings")
    scale = y.get("scale", "linear")
    if scale not in ("linear", "log"):
        raise ChartError(f"{where}: 'y.scale' must be linear or log, not {scale!r}")
    raw = d.get("series")
    if not isinstance(raw, list) or not raw:
        raise ChartError(f"{where}: 'series' must be a non-empty list")
    series = []
    for i, s in enumerate(raw):
        if not isinstance(s, dict) or not isinstance(s.get("values"), list) \
                or len(s["values"]) != len(cats):
            raise ChartError(f"{where}: series[{i}] needs 'values', one per category")
        vals = s["values"]
        if not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)
                                 and math.isfinite(v) and (v > 0 or scale == "linear"))
                   for v in vals):
            raise ChartError(f"{where}: series[{i}] values must be numbers"
                             + (" above zero on a log scale" if scale == "log" else ""))
        series.append(Series(_text(s, "name", f"{where}: series[{i}]"), tuple(vals)))
    return Chart(_text(d, "title", where), _text(d, "summary", where),
                 _text(x, "label", f"{where}: x"), tuple(cats), _text(y, "label", f"{where}: y"),
                 scale == "log", tuple(series))


def _number(v: float | None) -> str:
    if v is None:
        return "–"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:,.3g}"


def _y_range(c: Chart) -> tuple[float, float, list[float]]:
    vals = [v for s in c.series for v in s.values if v is not None] or [1.0]
    if c.log:
        lo = 10 ** math.floor(math.log10(min(vals)))
        hi = 10 ** math.ceil(math.log10(max(vals)))
        if hi == lo:
            hi = lo * 10
        ticks, t = [], lo
        while t <= hi * 1.0001:
            ticks.append(t)
            t *= 10
        return lo, hi, ticks
    top = max(max(vals), 0.0) or 1.0
    step = 10 ** math.floor(math.log10(top / 5))
    for m in (1, 2, 5, 10):
        if top / (step * m) <= 6:
            step *= m
            break
    hi = math.ceil(top / step) * step
    return 0.0, hi, [i * step for i in range(int(round(hi / step)) + 1)]


def chart_svg(c: Chart, chart_id: str) -> str:
    """The chart as inline SVG, labelled by its title."""
    lo, hi, ticks = _y_range(c)
    plot_h = H - TOP - BOTTOM
    plot_w = W - LEFT - RIGHT

    def y(v: float) -> float:
        if c.log:
            f = (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        else:
            f = (v - lo) / (hi - lo)
        return TOP + plot_h * (1 - f)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" '
           f'height="{H}" role="img" aria-labelledby="{chart_id}-title" '
           f'font-family="system-ui, sans-serif" font-size="{FONT}">',
           f'<title id="{chart_id}-title">{escape(c.title)}</title>',
           f'<rect width="{W}" height="{H}" fill="#fff"/>',
           f'<text x="{W / 2}" y="26" text-anchor="middle" font-size="{FONT + 3}" '
           f'font-weight="bold">{escape(c.title)}</text>']
    for t in ticks:
        yy = y(t)
        out.append(f'<line x1="{LEFT}" y1="{yy:.1f}" x2="{W - RIGHT}" y2="{yy:.1f}" stroke="#ddd"/>'
                   f'<text x="{LEFT - 8}" y="{yy + 5:.1f}" text-anchor="end">{_number(t)}</text>')
    out.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#333"/>'
               f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{W - RIGHT}" y2="{TOP + plot_h}" '
               f'stroke="#333"/>')
    scale = " (log scale)" if c.log else ""
    out.append(f'<text transform="translate(20 {TOP + plot_h / 2:.0f}) rotate(-90)" '
               f'text-anchor="middle">{escape(c.y_label + scale)}</text>')
    group_w = plot_w / len(c.categories)
    bar_w = group_w / (len(c.series) + 1)
    for gi, cat in enumerate(c.categories):
        gx = LEFT + gi * group_w + bar_w / 2
        for si, s in enumerate(c.series):
            v = s.values[gi]
            if v is None:
                continue
            top = y(max(v, lo)) if c.log else y(v)
            out.append(f'<rect x="{gx + si * bar_w:.1f}" y="{top:.1f}" width="{bar_w * 0.9:.1f}" '
                       f'height="{TOP + plot_h - top:.1f}" fill="{PALETTE[si % len(PALETTE)]}">'
                       f'<title>{escape(s.name)}, {escape(cat)}: {_number(v)}</title></rect>')
        out.append(f'<text x="{gx + bar_w * len(c.series) / 2:.1f}" y="{TOP + plot_h + 22}" '
                   f'text-anchor="middle">{escape(cat)}</text>')
    out.append(f'<text x="{LEFT + plot_w / 2:.0f}" y="{TOP + plot_h + 46}" '
               f'text-anchor="middle">{escape(c.x_label)}</text>')
    lx = LEFT
    for si, s in enumerate(c.series):
        out.append(f'<rect x="{lx}" y="{H - 30}" width="14" height="14" '
                   f'fill="{PALETTE[si % len(PALETTE)]}"/>'
                   f'<text x="{lx + 20}" y="{H - 18}">{escape(s.name)}</text>')
        lx += 30 + 9 * len(s.name) + 20
    out.append("</svg>")
    return "\n".join(out)


def chart_table(c: Chart) -> str:
    """The chart's numbers, one row per category."""
    head = "".join(f"<th scope=\"col\">{escape(s.name)}</th>" for s in c.series)
    rows = []
    for gi, cat in enumerate(c.categories):
        cells = "".join(f'<td class="num">{_number(s.values[gi])}</td>' for s in c.series)
        rows.append(f"<tr><th scope=\"row\">{escape(cat)}</th>{cells}</tr>")
    return (f'<table><caption>{escape(c.y_label)}</caption><thead><tr>'
            f'<th scope="col">{escape(c.x_label)}</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def chart_figure(c: Chart, chart_id: str) -> str:
    """The whole figure: title, picture, the sentence, and the data beside it."""
    return (f'<figure class="chart" id="{escape(chart_id)}">'
            f'<figcaption><strong>{escape(c.title)}.</strong> {escape(c.summary)}</figcaption>'
            f'{chart_svg(c, chart_id)}'
            f'<div class="chart-data">{chart_table(c)}</div></figure>')
