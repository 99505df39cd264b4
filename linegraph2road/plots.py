"""A small line chart as a PNG (per-round scores of ``l2r eval-interactive``).

Drawn with Pillow (already installed with scikit-image) rather than matplotlib, which the project
does not otherwise need: axes, a y grid, one polyline with markers per series, tick labels and a
legend in Pillow's built-in bitmap font. Written atomically.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

from linegraph2road.errors import ParameterError
from linegraph2road.io._atomic import atomic_path

__all__ = ["line_chart"]

_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
            (140, 86, 75)]  # fmt: skip


def line_chart(
    series: Mapping[str, Sequence[float | None]],
    path: str | os.PathLike[str],
    *,
    x_values: Sequence[float] | None = None,
    title: str = "",
    x_label: str = "round",
    y_range: tuple[float, float] = (0.0, 1.0),
    size: tuple[int, int] = (720, 440),
) -> None:
    """Write a line chart of ``series`` (name -> values; None/NaN leave a gap) to ``path`` (PNG).

    Parameters
    ----------
    series : mapping of str to sequence of float
        Equal lengths; at most 6 series.
    x_values : sequence of float, optional
        x of each value (default 1, 2, ...).
    title, x_label : str
    y_range : (float, float)
        Fixed y axis (default 0-1, the scores' range).
    size : (int, int)
        Width and height in pixels.
    """
    from PIL import Image, ImageDraw

    if not series or len(series) > len(_COLOURS):
        raise ParameterError(f"line_chart draws 1 to {len(_COLOURS)} series, got {len(series)}")
    n = len(next(iter(series.values())))
    if n == 0 or any(len(v) != n for v in series.values()):
        raise ParameterError("every series needs the same number (>= 1) of values")
    xs = list(x_values) if x_values is not None else list(range(1, n + 1))
    w, h = size
    left, right, top, bottom = 56, 150, 36, 44
    lo, hi = y_range
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1

    def px(x: float, y: float) -> tuple[float, float]:
        fx = left + (x - x0) / (x1 - x0) * (w - left - right)
        fy = h - bottom - (min(max(y, lo), hi) - lo) / (hi - lo) * (h - top - bottom)
        return fx, fy

    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    for k in range(6):
        y = lo + (hi - lo) * k / 5
        d.line([px(x0, y), px(x1, y)], fill=(225, 225, 225))
        d.text((8, px(x0, y)[1] - 6), f"{y:.2f}", fill="black")
    for x in xs:
        d.text((px(x, lo)[0] - 4, h - bottom + 6), f"{x:g}", fill="black")
    d.line([px(x0, lo), px(x1, lo)], fill="black")
    d.line([px(x0, lo), px(x0, hi)], fill="black")
    d.text((w // 2 - 20, h - 18), x_label, fill="black")
    d.text((left, 10), title, fill="black")
    for i, (name, values) in enumerate(series.items()):
        colour = _COLOURS[i]
        run: list[tuple[float, float]] = []
        for x, v in zip(xs, values, strict=True):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                if len(run) > 1:
                    d.line(run, fill=colour, width=2)
                run = []
                continue
            p = px(x, float(v))
            run.append(p)
            d.ellipse([p[0] - 3, p[1] - 3, p[0] + 3, p[1] + 3], fill=colour)
        if len(run) > 1:
            d.line(run, fill=colour, width=2)
        ly = top + 18 * i
        d.line([(w - right + 12, ly + 6), (w - right + 32, ly + 6)], fill=colour, width=3)
        d.text((w - right + 38, ly), name, fill="black")
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
