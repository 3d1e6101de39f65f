"""Inline SVG charts for the console: drawn on the server from a few numbers, so a page needs no script, no
plotting library in the browser and nothing from the internet, and renders in the time its queries take."""

from __future__ import annotations

from html import escape

from markupsafe import Markup

PALETTE = ("#3b6ea8", "#d9822b", "#3a9a5b", "#b8433f", "#7d5ba6", "#8c6d46", "#c45c9a", "#6f7780", "#a3a537", "#2ba1b5")
STATUS_COLOURS = {"alert": "#b8433f", "warning": "#d9822b", "trend": "#8c6d46", "ok": "#3a9a5b", "skipped": "#9aa3ad"}


def _number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def histogram(bins: list[tuple[float, float, int]], width: int = 520, height: int = 180, colour: str = PALETTE[0]) -> Markup:
    """Bars of ``(low, high, count)`` with the range and the largest count labelled; each bar's tooltip names its bin."""
    if not bins:
        return Markup("")
    top = max(c for _, _, c in bins) or 1
    left, bottom, plot_h = 8, 22, height - 34
    bar_w = (width - 2 * left) / len(bins)
    parts = [f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
             f"<title>histogram of {sum(c for _, _, c in bins):,} values</title>"]
    for i, (lo, hi, count) in enumerate(bins):
        h = plot_h * count / top
        x, y = left + i * bar_w, height - bottom - h
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(bar_w - 1.5, 1):.1f}" height="{h:.1f}" fill="{colour}">'
                     f"<title>{escape(_number(lo))} to {escape(_number(hi))}: {count:,}</title></rect>")
    parts.append(f'<text x="{left}" y="{height - 6}" class="axis">{escape(_number(bins[0][0]))}</text>')
    parts.append(f'<text x="{width - left}" y="{height - 6}" class="axis" text-anchor="end">{escape(_number(bins[-1][1]))}</text>')
    parts.append(f'<text x="{left}" y="11" class="axis">max {top:,}</text></svg>')
    return Markup("".join(parts))


def lines(series: dict[str, list[tuple[object, float]]], width: int = 640, height: int = 220, threshold: float | None = None,
          colours: dict[str, str] | None = None) -> Markup:
    """One line per series over shared x labels (dates), a dashed ``threshold`` and a legend; points carry tooltips."""
    series = {k: [(x, v) for x, v in pts if v is not None] for k, pts in series.items()}
    series = {k: pts for k, pts in series.items() if pts}
    if not series:
        return Markup("")
    xs = sorted({x for pts in series.values() for x, _ in pts})
    values = [v for pts in series.values() for _, v in pts] + ([threshold] if threshold is not None else [])
    lo, hi = min(0.0, min(values)), max(values)
    hi = hi if hi > lo else lo + 1.0
    left, right, top_pad, bottom = 44, 150, 10, 26
    plot_w, plot_h = width - left - right, height - top_pad - bottom

    def px(x) -> float:
        return left + (plot_w * xs.index(x) / (len(xs) - 1) if len(xs) > 1 else plot_w / 2)

    def py(v: float) -> float:
        return top_pad + plot_h * (1 - (v - lo) / (hi - lo))

    parts = [f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
             f"<title>{escape(', '.join(series))} over {len(xs)} dates</title>",
             f'<line x1="{left}" y1="{py(lo):.1f}" x2="{left + plot_w}" y2="{py(lo):.1f}" class="grid"/>',
             f'<text x="{left - 4}" y="{py(hi) + 4:.1f}" class="axis" text-anchor="end">{escape(_number(hi))}</text>',
             f'<text x="{left - 4}" y="{py(lo) + 4:.1f}" class="axis" text-anchor="end">{escape(_number(lo))}</text>',
             f'<text x="{left}" y="{height - 6}" class="axis">{escape(str(xs[0]))}</text>']
    if len(xs) > 1:
        parts.append(f'<text x="{left + plot_w}" y="{height - 6}" class="axis" text-anchor="end">{escape(str(xs[-1]))}</text>')
    if threshold is not None:
        parts.append(f'<line x1="{left}" y1="{py(threshold):.1f}" x2="{left + plot_w}" y2="{py(threshold):.1f}" class="threshold">'
                     f"<title>alert at {escape(_number(threshold))}</title></line>")
    for i, (name, pts) in enumerate(series.items()):
        colour = (colours or {}).get(name, PALETTE[i % len(PALETTE)])
        path = " ".join(f"{px(x):.1f},{py(v):.1f}" for x, v in pts)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
        for x, v in pts:
            parts.append(f'<circle cx="{px(x):.1f}" cy="{py(v):.1f}" r="2.6" fill="{colour}"><title>{escape(name)} {escape(str(x))}: '
                         f"{escape(_number(v))}</title></circle>")
        y = top_pad + 12 + i * 14
        if y < height - bottom:
            parts.append(f'<rect x="{width - right + 10}" y="{y - 8}" width="10" height="3" fill="{colour}"/>'
                         f'<text x="{width - right + 24}" y="{y - 4}" class="legend">{escape(name[:22])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def intervals(rows: list[tuple[str, float, float, float]], width: int = 520, colour: str = PALETTE[0]) -> Markup:
    """Horizontal 95 % intervals ``(label, low, estimate, high)`` on a shared axis: the A/B readout at a glance."""
    if not rows:
        return Markup("")
    lo = min(r[1] for r in rows)
    hi = max(r[3] for r in rows)
    pad = (hi - lo) * 0.1 or 0.01
    lo, hi = lo - pad, hi + pad
    left, right, row_h = 90, 20, 30
    height = row_h * len(rows) + 24
    plot_w = width - left - right

    def px(v: float) -> float:
        return left + plot_w * (v - lo) / (hi - lo)

    parts = [f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
             "<title>estimates with 95 % intervals</title>"]
    for i, (label, low, mid, high) in enumerate(rows):
        y = 14 + i * row_h
        parts.append(f'<text x="{left - 8}" y="{y + 4}" class="legend" text-anchor="end">{escape(label)}</text>'
                     f'<line x1="{px(low):.1f}" y1="{y}" x2="{px(high):.1f}" y2="{y}" stroke="{colour}" stroke-width="3"/>'
                     f'<circle cx="{px(mid):.1f}" cy="{y}" r="5" fill="{colour}"><title>{escape(label)}: {mid:.4f} '
                     f"({low:.4f} to {high:.4f})</title></circle>")
    parts.append(f'<text x="{left}" y="{height - 4}" class="axis">{lo:.3f}</text>'
                 f'<text x="{left + plot_w}" y="{height - 4}" class="axis" text-anchor="end">{hi:.3f}</text></svg>')
    return Markup("".join(parts))
