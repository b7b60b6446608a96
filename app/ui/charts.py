"""Server-drawn SVG charts: no JavaScript, no CDN, numbers also given as a table beside them."""

from __future__ import annotations

import math
from typing import Any, Sequence

WIDTH, HEIGHT, PAD = 560, 220, 36


def bar_chart(items: Sequence[tuple[str, int]]) -> dict[str, Any]:
    """Geometry for a bar chart of ``(label, value)``, for templates/partials/_bar_chart.svg."""
    top = max((v for _, v in items), default=0) or 1
    step = (WIDTH - 2 * PAD) / max(1, len(items))
    bars = [{"x": PAD + i * step + step * 0.1, "width": step * 0.8, "height": (HEIGHT - 2 * PAD) * v / top,
             "y": HEIGHT - PAD - (HEIGHT - 2 * PAD) * v / top, "label": label, "value": v}
            for i, (label, v) in enumerate(items)]
    return {"width": WIDTH, "height": HEIGHT, "pad": PAD, "bars": bars, "top": top}


def line_chart(points: Sequence[dict[str, Any]], series: Sequence[tuple[str, ...]], *, x: str) -> dict[str, Any]:
    """Geometry for lines of ``series`` over ``x``; y is in [0, 1]. A series is ``(key, name)``, or
    ``(key, name, x_key)`` when its points sit at other x values (a baseline)."""
    placed = [(key, name, rest[0] if rest else x) for key, name, *rest in series]
    xs = [p[xk] for _, _, xk in placed for p in points if p.get(xk) is not None]
    if not xs:
        return {"width": WIDTH, "height": HEIGHT, "pad": PAD, "lines": [], "xticks": []}
    lo, hi = min(xs), max(xs)
    span = (hi - lo) or 1

    def px(value: float) -> float:
        return PAD + (WIDTH - 2 * PAD) * ((value - lo) / span if hi != lo else 0.5)

    def py(value: float) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * value

    lines = []
    for index, (key, name, xk) in enumerate(placed):
        dots = [{"x": round(px(p[xk]), 1), "y": round(py(p[key]), 1), "value": p[key], "at": p[xk]}
                for p in sorted(points, key=lambda p: p.get(xk) or 0) if p.get(key) is not None and p.get(xk) is not None]
        lines.append({"name": name, "key": key, "dots": dots, "dash": ("", "6 4", "2 3")[min(index, 2)],
                      "path": " ".join(f"{'M' if i == 0 else 'L'}{d['x']},{d['y']}" for i, d in enumerate(dots))})
    return {"width": WIDTH, "height": HEIGHT, "pad": PAD, "lines": lines,
            "xticks": [{"x": round(px(v), 1), "label": v} for v in round_ticks(lo, hi)]}


def round_ticks(lo: float, hi: float, most: int = 6) -> list[int]:
    """At most ``most`` round values (1, 2 or 5 times a power of ten apart) within [lo, hi]: a tick
    per point overlapped once versions came every few labels."""
    if hi <= lo:
        return [int(lo)]
    magnitude = 10 ** math.floor(math.log10(hi - lo))
    step = next(m * magnitude for m in (0.1, 0.2, 0.5, 1, 2, 5, 10) if (hi - lo) / (m * magnitude) <= most - 1)
    step = max(1, int(step))
    first = math.ceil(lo / step) * step
    return list(range(int(first), int(hi) + 1, step))
