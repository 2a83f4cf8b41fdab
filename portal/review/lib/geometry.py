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


# --- corrected masks (brush, eraser, split, merge) ------------------------------------------------------
MAX_MASK_SIDE_PX = 1024  # a corrected mask's box: a cell, not a field
MIN_MASK_AREA_PX = 4


def decode_rle(rle: dict) -> np.ndarray:
    """The whole-image boolean mask (h x w) of a COCO RLE (compressed or uncompressed counts)."""
    h, w = rle["size"]
    counts = rle["counts"]
    if isinstance(counts, list):
        return mask_utils.decode(mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)).astype(bool)
    return mask_utils.decode({"size": [h, w], "counts": counts.encode("ascii") if isinstance(counts, str)
                              else counts}).astype(bool)


def mask_from_crop(mask: dict, *, width: int, height: int) -> np.ndarray:
    """The whole-image boolean mask of ``{"origin": [x0, y0], "size": [h, w], "counts": [...]}``: an
    uncompressed COCO RLE of a crop (column-major, starting with a run of background) placed at
    ``origin``. Refuses crops outside the image, larger than MAX_MASK_SIDE_PX, or with bad counts."""
    if not isinstance(mask, dict):
        raise GeometryError("The mask is an object with origin, size and counts.")
    try:
        x0, y0 = (int(v) for v in mask["origin"])
        h, w = (int(v) for v in mask["size"])
        counts = [int(c) for c in mask["counts"]]
    except (KeyError, TypeError, ValueError):
        raise GeometryError("The mask needs origin [x, y], size [height, width] and integer counts.")
    if h < 1 or w < 1 or h > MAX_MASK_SIDE_PX or w > MAX_MASK_SIDE_PX:
        raise GeometryError(f"A corrected mask's box must be 1 to {MAX_MASK_SIDE_PX} pixels on each side.")
    if x0 < 0 or y0 < 0 or x0 + w > width or y0 + h > height:
        raise GeometryError("The mask lies (partly) outside the image.")
    if any(c < 0 for c in counts) or sum(counts) != h * w:
        raise GeometryError("The mask's counts must be non-negative and add up to height × width.")
    flat = np.zeros(h * w, dtype=bool)
    pos, value = 0, False
    for c in counts:
        if value:
            flat[pos:pos + c] = True
        pos += c
        value = not value
    full = np.zeros((height, width), dtype=bool)
    full[y0:y0 + h, x0:x0 + w] = flat.reshape((w, h)).T  # column-major
    return full


def mask_from_polygon(points: list[list[float]], *, width: int, height: int) -> np.ndarray:
    """The whole-image boolean mask of a cleaned polygon (``clean_polygon``)."""
    flat = [v for p in points for v in p]
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([flat], height, width))).astype(bool)


def measure_mask(full: np.ndarray, *, um_per_px: float | None) -> Measured:
    """Mask (compressed RLE), box, area, centroid and equivalent diameter of a whole-image boolean mask;
    refuses masks under MIN_MASK_AREA_PX pixels."""
    height, width = full.shape
    yy, xx = np.nonzero(full)
    if len(xx) < MIN_MASK_AREA_PX:
        raise GeometryError(f"The mask is empty or smaller than {MIN_MASK_AREA_PX} pixels.")
    if xx.max() - xx.min() + 1 > MAX_MASK_SIDE_PX or yy.max() - yy.min() + 1 > MAX_MASK_SIDE_PX:
        raise GeometryError(f"A corrected mask must fit in {MAX_MASK_SIDE_PX} × {MAX_MASK_SIDE_PX} pixels.")
    rle = mask_utils.encode(np.asfortranarray(full.astype(np.uint8)))
    area = float(len(xx))
    cx, cy = float(xx.mean() + 0.5), float(yy.mean() + 0.5)
    box = (float(xx.min()), float(yy.min()), float(xx.max() + 1), float(yy.max() + 1))
    rle_json = {"size": [height, width], "counts": rle["counts"].decode("ascii")}
    if um_per_px:
        area_um2 = area * um_per_px * um_per_px
        diameter = 2.0 * math.sqrt(area / math.pi) * um_per_px
        cxu, cyu = cx * um_per_px, cy * um_per_px
    else:
        area_um2 = diameter = cxu = cyu = None
    return Measured(rle_json, box, area, cx, cy, area_um2, diameter, cxu, cyu)


def split_by_line(full: np.ndarray, line) -> tuple[np.ndarray, np.ndarray]:
    """The two parts of a mask on either side of the straight line through the first and last point of
    ``line`` ([[x, y], ...] in image pixels). Refuses a line that leaves one side (nearly) empty."""
    try:
        (ax, ay), (bx, by) = (float(v) for v in line[0]), (float(v) for v in line[-1])
    except (TypeError, ValueError, IndexError):
        raise GeometryError("A split line is [[x, y], [x, y]] in image pixels.")
    if not all(math.isfinite(v) for v in (ax, ay, bx, by)) or math.hypot(bx - ax, by - ay) < 1.0:
        raise GeometryError("A split line needs two distinct points.")
    yy, xx = np.mgrid[0:full.shape[0], 0:full.shape[1]]
    side = (bx - ax) * (yy + 0.5 - ay) - (by - ay) * (xx + 0.5 - ax) > 0
    first, second = full & side, full & ~side
    if first.sum() < MIN_MASK_AREA_PX or second.sum() < MIN_MASK_AREA_PX:
        raise GeometryError("The line does not cut the cell into two parts.")
    return first, second


def simplify_polygon(points: list[list[float]], *, tolerance: float) -> list[list[float]]:
    """Douglas–Peucker simplification of a closed polygon (``tolerance`` in the points' units)."""
    if len(points) <= 4:
        return [list(p) for p in points]
    pts = np.asarray(points, dtype=float)
    # split the ring at the point farthest from the first, simplify both chains
    far = int(np.argmax(((pts - pts[0]) ** 2).sum(axis=1)))

    def chain(a: np.ndarray) -> list[int]:
        keep = [0, len(a) - 1]
        stack = [(0, len(a) - 1)]
        while stack:
            i, j = stack.pop()
            if j <= i + 1:
                continue
            d = a[j] - a[i]
            seg = math.hypot(*d)
            rel = a[i + 1:j] - a[i]
            dist = np.abs(d[0] * rel[:, 1] - d[1] * rel[:, 0]) / seg if seg > 0 else np.hypot(rel[:, 0], rel[:, 1])
            k = int(np.argmax(dist))
            if dist[k] > tolerance:
                keep.append(i + 1 + k)
                stack += [(i, i + 1 + k), (i + 1 + k, j)]
        return sorted(set(keep))

    first = pts[:far + 1]
    second = np.vstack([pts[far:], pts[:1]])
    idx = chain(first) + [far + k for k in chain(second)[1:-1]]
    return [[round(float(pts[i][0]), 2), round(float(pts[i][1]), 2)] for i in idx]
