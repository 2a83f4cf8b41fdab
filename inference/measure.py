"""Per-instance measurements from masks: area, equivalent-circle diameter, centroid (px and µm).

Centroids are in continuous pixel coordinates from the image's top-left corner (a pixel (col, row)
covers [col, col + 1) x [row, row + 1), so its centre is (col + 0.5, row + 0.5)), like the boxes.
An instance whose pasted mask is empty (a tiny box whose mask probabilities all fall below 0.5) has
no mask centroid; given the boxes, its centroid is the box centre instead, so every instance has one.
"""
from __future__ import annotations

import numpy as np


def mask_areas_px(masks: np.ndarray) -> np.ndarray:
    """bool [N, H, W] -> float64 [N] pixel counts."""
    masks = np.asarray(masks, dtype=bool)
    if masks.shape[0] == 0:
        return np.zeros(0, dtype=np.float64)
    return masks.reshape(masks.shape[0], -1).sum(axis=1).astype(np.float64)


def mask_centroids_px(masks: np.ndarray) -> np.ndarray:
    """bool [N, H, W] -> float64 [N, 2] (x, y) centroid; NaN for empty masks."""
    masks = np.asarray(masks, dtype=bool)
    n, h, w = masks.shape
    if n == 0:
        return np.zeros((0, 2), dtype=np.float64)
    area = mask_areas_px(masks)
    col = masks.sum(axis=1, dtype=np.float64)  # [N, W]
    row = masks.sum(axis=2, dtype=np.float64)  # [N, H]
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = (col @ (np.arange(w, dtype=np.float64) + 0.5)) / area
        cy = (row @ (np.arange(h, dtype=np.float64) + 0.5)) / area
    return np.stack([cx, cy], axis=1)


def equivalent_diameter(area_px: np.ndarray, um_per_px: float | None) -> np.ndarray:
    """``2 * sqrt(area_px / pi) * um_per_px`` (NaN when ``um_per_px`` is None)."""
    area_px = np.asarray(area_px, dtype=np.float64)
    if um_per_px is None:
        return np.full(area_px.shape, np.nan)
    return 2.0 * np.sqrt(area_px / np.pi) * float(um_per_px)


def measure(masks, um_per_px: float | None = None,
            boxes: np.ndarray | None = None) -> dict[str, np.ndarray | None]:
    """All measurements: area_px, area_um2, diameter_um, centroid_px, centroid_um (None without scale).

    ``masks``: bool [N, H, W] or compact masks with ``areas()`` and ``centroids()`` (e.g.
    :class:`inference.structures.cropped_masks.CroppedMasks`, measured without a full frame).
    ``boxes`` (float [N, 4] x1 y1 x2 y2) give the centroid of instances whose mask is empty.
    """
    if um_per_px is not None and not (float(um_per_px) > 0):
        raise ValueError(f"um_per_px must be a positive number, got {um_per_px!r}")
    if hasattr(masks, "areas") and hasattr(masks, "centroids"):
        area, cen = masks.areas(), masks.centroids()
    else:
        area, cen = mask_areas_px(masks), mask_centroids_px(masks)
    if boxes is not None and len(cen):
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        empty = area == 0
        cen[empty, 0] = (boxes[empty, 0] + boxes[empty, 2]) / 2.0
        cen[empty, 1] = (boxes[empty, 1] + boxes[empty, 3]) / 2.0
    scale = None if um_per_px is None else float(um_per_px)
    return {
        "area_px": area,
        "area_um2": area * scale**2 if scale is not None else np.full(area.shape, np.nan),
        "diameter_um": equivalent_diameter(area, scale),
        "centroid_px": cen,
        "centroid_um": cen * scale if scale is not None else None,
    }
