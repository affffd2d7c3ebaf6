"""Small inline-SVG charts for the session report (no JavaScript, no external resources).

A :class:`Chart` maps data coordinates to pixels and draws axes with ticks, axis titles (with units), a
legend, lines, markers, horizontal bands and bars. Colours are the Okabe-Ito palette (Okabe & Ito 2008),
readable with the common forms of colour blindness; series are also told apart by dash pattern or marker
shape, so the charts survive greyscale printing. Long series are reduced to a min/max envelope per pixel
column (:func:`envelope`), so an hour at 100 Hz stays a small page and keeps its peaks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

import numpy as np

#: Okabe-Ito colour-blind-safe palette.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

#: Fixed colour per quantity, used on every chart and in the text.
COLOURS = {
    "left": OKABE_ITO["blue"],
    "right": OKABE_ITO["vermillion"],
    "pelvis": OKABE_ITO["bluish_green"],
    "lumbar": OKABE_ITO["reddish_purple"],
    "reference": OKABE_ITO["sky_blue"],
    "baseline": OKABE_ITO["black"],
    "correct": OKABE_ITO["bluish_green"],
    "other": OKABE_ITO["orange"],
    "target": OKABE_ITO["black"],
}


def nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """About ``n`` round tick values covering ``[lo, hi]`` (steps of 1, 2, 2.5 or 5 times a power of 10)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else [0.0]
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    v = first
    while v <= hi + 1e-9 * step:
        ticks.append(round(v, 10))
        v += step
    return ticks


def fmt_tick(v: float) -> str:
    if abs(v - round(v)) < 1e-9:
        return f"{int(round(v))}".replace("-", "\u2212")
    return f"{v:g}".replace("-", "\u2212")


def envelope(t: np.ndarray, y: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Reduce a long series to at most ``2 * n_bins`` points: per time bin its min and max, in time order.

    NaN samples are kept as breaks (a bin with NaN on either side of valid data splits the line), so gaps
    remain visible instead of being bridged.
    """
    t = np.asarray(t, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(t) <= 2 * n_bins:
        return t, y
    edges = np.linspace(t[0], t[-1], n_bins + 1)
    idx = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, n_bins - 1)
    out_t: list[float] = []
    out_y: list[float] = []
    starts = np.searchsorted(idx, np.arange(n_bins), side="left")
    stops = np.searchsorted(idx, np.arange(n_bins), side="right")
    for a, b in zip(starts, stops, strict=True):
        if b <= a:
            continue
        seg = y[a:b]
        ok = np.isfinite(seg)
        if not ok.any():
            out_t.append(float(t[a]))
            out_y.append(math.nan)
            continue
        i_min = a + int(np.nanargmin(seg))
        i_max = a + int(np.nanargmax(seg))
        lo, hi = sorted((i_min, i_max))
        if not ok[0]:
            out_t.append(float(t[a]))
            out_y.append(math.nan)
        out_t += [float(t[lo]), float(t[hi])]
        out_y += [float(y[lo]), float(y[hi])]
        if not ok[-1]:
            out_t.append(float(t[b - 1]))
            out_y.append(math.nan)
    return np.asarray(out_t), np.asarray(out_y)


@dataclass
class _Legend:
    label: str
    colour: str
    kind: str  # line | marker | band | bar
    dash: str = ""
    marker: str = "circle"
    opacity: float = 1.0


@dataclass
class Chart:
    """One chart: data ranges, axis titles with units, and the SVG elements drawn so far.

    ``width``/``height`` in CSS pixels; the plot area leaves margins for the tick labels and titles.
    """

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    x_title: str
    y_title: str
    title: str = ""
    width: int = 860
    height: int = 300
    margin: tuple[int, int, int, int] = (34, 24, 50, 70)  # top, right, bottom, left
    y_tick_labels: dict[float, str] | None = None
    x_ticks: Sequence[float] | None = None
    elements: list[str] = field(default_factory=list)
    legend: list[_Legend] = field(default_factory=list)

    # -- coordinates --------------------------------------------------------------------------------
    @property
    def plot_box(self) -> tuple[float, float, float, float]:
        top, right, bottom, left = self.margin
        return left, top, self.width - right, self.height - bottom

    def px(self, x: np.ndarray | float) -> np.ndarray:
        x0, _, x1, _ = self.plot_box
        a, b = self.x_range
        return x0 + (np.asarray(x, dtype=float) - a) / (b - a if b != a else 1.0) * (x1 - x0)

    def py(self, y: np.ndarray | float) -> np.ndarray:
        _, y0, _, y1 = self.plot_box
        a, b = self.y_range
        return y1 - (np.asarray(y, dtype=float) - a) / (b - a if b != a else 1.0) * (y1 - y0)

    # -- drawing ------------------------------------------------------------------------------------
    def line(
        self,
        x: np.ndarray,
        y: np.ndarray,
        colour: str,
        label: str | None = None,
        *,
        dash: str = "",
        width: float = 1.6,
        max_points: int | None = None,
    ) -> None:
        """A polyline, broken at NaN; long series are reduced to a min/max envelope per pixel column."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        if max_points is None:
            max_points = int(self.plot_box[2] - self.plot_box[0])
        x, y = envelope(x, y, max_points)
        xs, ys = self.px(x), self.py(np.clip(y, *self.y_range))
        ok = np.isfinite(ys) & np.isfinite(xs)
        parts: list[str] = []
        run: list[str] = []
        for xi, yi, good in zip(xs, ys, ok, strict=True):
            if good:
                run.append(f"{xi:.1f},{yi:.1f}")
            elif run:
                parts.append(" ".join(run))
                run = []
        if run:
            parts.append(" ".join(run))
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        for p in parts:
            if " " not in p:  # a single point: draw a dot so it is visible
                cx, cy = p.split(",")
                self.elements.append(f'<circle cx="{cx}" cy="{cy}" r="1.5" fill="{colour}"/>')
                continue
            self.elements.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="{width}"{dash_attr} '
                f'stroke-linejoin="round" points="{p}"/>'
            )
        if label:
            self.legend.append(_Legend(label, colour, "line", dash))

    def markers(
        self,
        x: Sequence[float],
        y: Sequence[float],
        colour: str,
        label: str | None = None,
        *,
        shape: str = "circle",
        size: float = 4.0,
    ) -> None:
        for xi, yi in zip(x, y, strict=True):
            if not (math.isfinite(xi) and math.isfinite(yi)):
                continue
            cx, cy = float(self.px(xi)), float(self.py(np.clip(yi, *self.y_range)))
            self.elements.append(_marker(shape, cx, cy, size, colour))
        if label:
            self.legend.append(_Legend(label, colour, "marker", marker=shape))

    def hband(
        self, y0: float, y1: float, colour: str, label: str | None = None, opacity: float = 0.18
    ) -> None:
        """A horizontal band across the plot (e.g. a reference range)."""
        x0, _, x1, _ = self.plot_box
        a, b = sorted((float(self.py(y0)), float(self.py(y1))))
        _, top, _, bottom = self.plot_box
        a, b = max(a, top), min(b, bottom)
        if b > a:
            self.elements.insert(
                0,
                f'<rect x="{x0:.1f}" y="{a:.1f}" width="{x1 - x0:.1f}" height="{b - a:.1f}" '
                f'fill="{colour}" fill-opacity="{opacity}"/>',
            )
        if label:
            self.legend.append(_Legend(label, colour, "band", opacity=opacity))

    def vband(self, x0: float, x1: float, colour: str, opacity: float = 0.12) -> None:
        _, top, _, bottom = self.plot_box
        a, b = float(self.px(x0)), float(self.px(x1))
        if b > a:
            self.elements.insert(
                0,
                f'<rect x="{a:.1f}" y="{top:.1f}" width="{b - a:.1f}" '
                f'height="{bottom - top:.1f}" fill="{colour}" fill-opacity="{opacity}"/>',
            )

    def hline(
        self, y: float, colour: str, label: str | None = None, dash: str = "6 4", width: float = 1.4
    ) -> None:
        x0, _, x1, _ = self.plot_box
        yy = float(self.py(y))
        _, top, _, bottom = self.plot_box
        if top <= yy <= bottom:
            self.elements.append(
                f'<line x1="{x0:.1f}" x2="{x1:.1f}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="{colour}" '
                f'stroke-width="{width}" stroke-dasharray="{dash}"/>'
            )
        if label:
            self.legend.append(_Legend(label, colour, "line", dash))

    def bar(
        self,
        x0: float,
        x1: float,
        y0: float,
        y1: float,
        colour: str,
        *,
        opacity: float = 1.0,
        stroke: str | None = None,
        title: str | None = None,
        hatch: bool = False,
    ) -> None:
        """A rectangle in data coordinates (timeline bars, bar charts); ``title`` becomes a hover tooltip."""
        a, b = sorted((float(self.px(x0)), float(self.px(x1))))
        c, d = sorted((float(self.py(y0)), float(self.py(y1))))
        fill = "url(#hatch)" if hatch else colour
        stroke_attr = f' stroke="{stroke}" stroke-width="1.2"' if stroke else ""
        tip = f"<title>{escape(title)}</title>" if title else ""
        self.elements.append(
            f'<rect x="{a:.1f}" y="{c:.1f}" width="{max(b - a, 0.8):.1f}" height="{d - c:.1f}" '
            f'fill="{fill}" fill-opacity="{opacity}"{stroke_attr}>{tip}</rect>'
        )

    def text(
        self,
        x: float,
        y: float,
        s: str,
        *,
        anchor: str = "middle",
        size: int = 12,
        colour: str = "#222",
        weight: str = "normal",
    ) -> None:
        self.elements.append(
            f'<text x="{float(self.px(x)):.1f}" y="{float(self.py(y)):.1f}" text-anchor="{anchor}" '
            f'font-size="{size}" font-weight="{weight}" fill="{colour}">{escape(s)}</text>'
        )

    def add_legend(self, label: str, colour: str, kind: str = "bar", opacity: float = 1.0) -> None:
        self.legend.append(_Legend(label, colour, kind, opacity=opacity))

    # -- output -------------------------------------------------------------------------------------
    def render(self, description: str) -> str:
        """The finished ``<svg>``; ``description`` is its accessible text (role=img + title).

        The legend goes below the x-axis title, wrapped into as many rows as needed (the SVG grows).
        """
        x0, y0, x1, y1 = self.plot_box
        legend, legend_h = self._legend_svg(self.height + 4)
        height = self.height + legend_h
        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {self.width} {height}" '
            f'width="{self.width}" height="{height}" role="img" aria-label="{escape(description)}">',
            f"<title>{escape(description)}</title>",
            '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
            'patternTransform="rotate(45)"><rect width="6" height="6" fill="#E69F00" fill-opacity="0.35"/>'
            '<line x1="0" y1="0" x2="0" y2="6" stroke="#E69F00" stroke-width="3"/></pattern></defs>',
            f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" fill="#fff" stroke="#999"/>',
        ]
        # grid and ticks
        y_ticks = list(self.y_tick_labels) if self.y_tick_labels else nice_ticks(*self.y_range)
        for v in y_ticks:
            yy = float(self.py(v))
            if not (y0 - 0.5 <= yy <= y1 + 0.5):
                continue
            label = self.y_tick_labels[v] if self.y_tick_labels else fmt_tick(v)
            out.append(f'<line x1="{x0}" x2="{x1}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#e3e3e3"/>')
            out.append(
                f'<text x="{x0 - 6}" y="{yy + 4:.1f}" text-anchor="end" font-size="12" fill="#333">'
                f"{escape(label)}</text>"
            )
        x_ticks = list(self.x_ticks) if self.x_ticks is not None else nice_ticks(*self.x_range, n=9)
        for v in x_ticks:
            xx = float(self.px(v))
            if not (x0 - 0.5 <= xx <= x1 + 0.5):
                continue
            out.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{y0}" y2="{y1}" stroke="#efefef"/>')
            out.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{y1}" y2="{y1 + 5}" stroke="#666"/>')
            out.append(
                f'<text x="{xx:.1f}" y="{y1 + 18}" text-anchor="middle" font-size="12" fill="#333">'
                f"{fmt_tick(v)}</text>"
            )
        zero = float(self.py(0.0))
        if y0 < zero < y1 and not self.y_tick_labels:
            out.append(
                f'<line x1="{x0}" x2="{x1}" y1="{zero:.1f}" y2="{zero:.1f}" stroke="#888" stroke-width="1"/>'
            )
        out.extend(self.elements)
        out.append(
            f'<text x="{(x0 + x1) / 2:.1f}" y="{self.height - 12}" text-anchor="middle" font-size="13" '
            f'fill="#222">{escape(self.x_title)}</text>'
        )
        out.append(
            f'<text transform="translate(18 {(y0 + y1) / 2:.1f}) rotate(-90)" text-anchor="middle" '
            f'font-size="13" fill="#222">{escape(self.y_title)}</text>'
        )
        if self.title:
            out.append(
                f'<text x="{x0}" y="22" font-size="15" font-weight="bold" fill="#222">'
                f"{escape(self.title)}</text>"
            )
        out.extend(legend)
        out.append("</svg>")
        return "\n".join(out)

    def _legend_svg(self, top: float) -> tuple[list[str], float]:
        """Legend items left to right from the plot's left edge, wrapping; returns (elements, height)."""
        if not self.legend:
            return [], 0.0
        out: list[str] = []
        x_start, _, x_end, _ = self.plot_box
        x, y = x_start, top + 14
        for it in self.legend:
            w = 30 + 6.8 * len(it.label)
            if x + w > x_end and x > x_start:
                x, y = x_start, y + 20
            if it.kind == "line":
                dash = f' stroke-dasharray="{it.dash}"' if it.dash else ""
                out.append(
                    f'<line x1="{x:.1f}" x2="{x + 20:.1f}" y1="{y - 4}" y2="{y - 4}" stroke="{it.colour}" '
                    f'stroke-width="2.4"{dash}/>'
                )
            elif it.kind == "marker":
                out.append(_marker(it.marker, x + 10, y - 4, 4.5, it.colour))
            else:
                fill = "url(#hatch)" if it.kind == "hatch" else it.colour
                out.append(
                    f'<rect x="{x:.1f}" y="{y - 10}" width="20" height="12" fill="{fill}" '
                    f'fill-opacity="{it.opacity if it.kind == "band" else 1.0}" stroke="#999" '
                    'stroke-width="0.5"/>'
                )
            out.append(
                f'<text x="{x + 25:.1f}" y="{y}" font-size="12.5" fill="#222">{escape(it.label)}</text>'
            )
            x += w
        return out, y - top + 8


def _marker(shape: str, cx: float, cy: float, size: float, colour: str) -> str:
    if shape == "square":
        s = size * 0.9
        return (
            f'<rect x="{cx - s:.1f}" y="{cy - s:.1f}" width="{2 * s:.1f}" height="{2 * s:.1f}" '
            f'fill="{colour}" stroke="#fff" stroke-width="0.6"/>'
        )
    if shape == "triangle":
        s = size * 1.15
        pts = f"{cx:.1f},{cy - s:.1f} {cx - s:.1f},{cy + s * 0.8:.1f} {cx + s:.1f},{cy + s * 0.8:.1f}"
        return f'<polygon points="{pts}" fill="{colour}" stroke="#fff" stroke-width="0.6"/>'
    return (
        f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{size:.1f}" fill="{colour}" '
        'stroke="#fff" stroke-width="0.6"/>'
    )
