"""Masks and measurements of hand-drawn instances (no Django here).

Coordinates are image pixels with the origin at the top-left corner of the top-left pixel (COCO).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pycocotools import mask as mask_utils

TYPICAL_HRS_DIAMETER_UM = 7.0  # labels.md: round spermatids are about 5–8 µm, ≈7 µm typical
MAX_VERTICES = 2000


class GeometryError(ValueError):
    """A polygon that cannot be an instance (too few vertices, outside the image, no area)."""


@dataclass(frozen=True)
class Measured:
    rle: dict
    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    area_px: float
    centroid_x_px: float
    centroid_y_px: float
    area_um2: float | None
    diameter_um: float | None
    centroid_x_um: float | None
    centroid_y_um: float | None


def clean_polygon(points, *, width: int, height: int) -> list[list[float]]:
    """``[[x, y], ...]`` as floats clipped to the image; refuses fewer than 3 or more than MAX_VERTICES."""
    if not isinstance(points, list | tuple) or len(points) < 3:
        raise GeometryError("A polygon needs at least 3 vertices.")
    if len(points) > MAX_VERTICES:
        raise GeometryError(f"A polygon may have at most {MAX_VERTICES} vertices.")
    out = []
    for p in points:
        if not isinstance(p, list | tuple) or len(p) != 2:
            raise GeometryError("Each vertex is a pair [x, y].")
        try:
            x, y = float(p[0]), float(p[1])
        except (TypeError, ValueError):
            raise GeometryError("Vertex coordinates must be numbers.")
        if not (math.isfinite(x) and math.isfinite(y)):
            raise GeometryError("Vertex coordinates must be finite.")
        out.append([round(min(max(x, 0.0), float(width)), 2), round(min(max(y, 0.0), float(height)), 2)])
    return out


def measure_polygon(points: list[list[float]], *, width: int, height: int, um_per_px: float | None) -> Measured:
    """Mask (compressed RLE of the whole image), box, area, centroid and equivalent diameter of a polygon."""
    flat = [v for p in points for v in p]
    rle = mask_utils.merge(mask_utils.frPyObjects([flat], height, width))
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x0, y0 = max(int(math.floor(min(xs))), 0), max(int(math.floor(min(ys))), 0)
    x1, y1 = min(int(math.ceil(max(xs))) + 1, width), min(int(math.ceil(max(ys))) + 1, height)
    crop_w, crop_h = max(x1 - x0, 1), max(y1 - y0, 1)
    local = [v - (x0 if i % 2 == 0 else y0) for i, v in enumerate(flat)]
    crop = mask_utils.decode([mask_utils.merge(mask_utils.frPyObjects([local], crop_h, crop_w))])[:, :, 0]
    yy, xx = np.nonzero(crop)
    if len(xx) == 0:
        raise GeometryError("The polygon covers no pixel.")
    area = float(len(xx))
    cx, cy = float(xx.mean() + x0 + 0.5), float(yy.mean() + y0 + 0.5)
    box = (float(xx.min() + x0), float(yy.min() + y0), float(xx.max() + x0 + 1), float(yy.max() + y0 + 1))
    counts = rle["counts"]
    rle_json = {"size": [height, width], "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}
    if um_per_px:
        area_um2 = area * um_per_px * um_per_px
        diameter = 2.0 * math.sqrt(area / math.pi) * um_per_px
        cxu, cyu = cx * um_per_px, cy * um_per_px
    else:
        area_um2 = diameter = cxu = cyu = None
    return Measured(rle_json, box, area, cx, cy, area_um2, diameter, cxu, cyu)


def circle_polygon(*, cx: float, cy: float, radius_px: float, vertices: int = 24) -> list[list[float]]:
    """A regular polygon approximating a circle (what the click-to-circle tool draws)."""
    return [
        [round(cx + radius_px * math.cos(2 * math.pi * k / vertices), 2),
         round(cy + radius_px * math.sin(2 * math.pi * k / vertices), 2)]
        for k in range(vertices)
    ]


def rle_to_polygon_outline(rle: dict) -> list[list[float]]:
    """The largest outer contour of an RLE mask as ``[[x, y], ...]`` (for COCO polygons of edits)."""
    import contourpy

    h, w = rle["size"]
    counts = rle["counts"]
    mask = mask_utils.decode({"size": [h, w], "counts": counts.encode("ascii") if isinstance(counts, str) else counts})
    padded = np.pad(mask.astype(np.float64), 1)
    lines = contourpy.contour_generator(z=padded, line_type="Separate").lines(0.5)
    if not lines:
        return []
    best = max(lines, key=len) - 1.0 + 0.5
    return [[round(float(x), 2), round(float(y), 2)] for x, y in best]
