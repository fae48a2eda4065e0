"""PNG line charts of a run's curves (best score by trial, ROC, precision-recall), drawn with
Pillow: offline, no display, no browser, and already installed with Streamlit."""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

W, H, PAD_L, PAD_R, PAD_T, PAD_B = 640, 420, 64, 20, 36, 48
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]


def line_chart(series: Sequence[tuple[str, Sequence[float], Sequence[float]]], *, title: str,
               x_label: str, y_label: str, points: bool = False,
               unit_square: bool = False) -> bytes:
    """Each (label, xs, ys) as a line (with dots if `points`) on shared axes, [0, 1]² when
    `unit_square` (rates); PNG bytes."""
    xs = [x for _, sx, _ in series for x in sx] or [0.0, 1.0]
    ys = [y for _, _, sy in series for y in sy] or [0.0, 1.0]
    x0, x1 = (0.0, 1.0) if unit_square else _span(min(xs), max(xs))
    y0, y1 = (0.0, 1.0) if unit_square else _span(min(ys), max(ys))
    img = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=13)

    def at(x: float, y: float) -> tuple[float, float]:
        return (PAD_L + (x - x0) / (x1 - x0) * (W - PAD_L - PAD_R),
                H - PAD_B - (y - y0) / (y1 - y0) * (H - PAD_T - PAD_B))

    draw.rectangle([PAD_L, PAD_T, W - PAD_R, H - PAD_B], outline="#888")
    for i in range(5):
        gx, gy = x0 + (x1 - x0) * i / 4, y0 + (y1 - y0) * i / 4
        px, _ = at(gx, y0)
        _, py = at(x0, gy)
        draw.line([px, PAD_T, px, H - PAD_B], fill="#eee")
        draw.line([PAD_L, py, W - PAD_R, py], fill="#eee")
        draw.text((px, H - PAD_B + 6), f"{gx:.3g}", fill="black", font=font, anchor="mt")
        draw.text((PAD_L - 6, py), f"{gy:.3g}", fill="black", font=font, anchor="rm")
    draw.text((W / 2, 10), title, fill="black", font=font, anchor="mt")
    draw.text((W / 2, H - 8), x_label, fill="black", font=font, anchor="mb")
    draw.text((6, PAD_T - 18), y_label, fill="black", font=font)
    for i, (label, sx, sy) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        pts = [at(x, y) for x, y in zip(sx, sy, strict=True)]
        if len(pts) > 1:
            draw.line(pts, fill=colour, width=2)
        if points or len(pts) == 1:
            for px, py in pts:
                draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
        draw.text((W - PAD_R - 8, PAD_T + 8 + 16 * i), label, fill=colour, font=font,
                  anchor="rt")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _span(lo: float, hi: float) -> tuple[float, float]:
    if hi - lo < 1e-12:
        return lo - 0.5, hi + 0.5
    margin = (hi - lo) * 0.04
    return lo - margin, hi + margin
