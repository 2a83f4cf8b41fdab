"""Tiled prediction for large images: overlapping tiles, instances cut at tile borders merged.

Each tile goes through the model like an image. Instances from all tiles are moved to full-image
coordinates, then merged greedily: whole instances (not touching an inner tile border) first, by
score; an instance from another tile with the same class whose mask matches an already kept one
(mask IoU >= ``iou_thresh`` or intersection over the smaller mask >= ``ioa_thresh``) is dropped, and
if both were cut by a border their masks are united. Each cell is reported once.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

Raw = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # boxes, scores, class_ids, masks


def tile_origins(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` px covering ``length`` px with at least ``overlap`` px overlap."""
    if length <= tile:
        return [0]
    if not 0 <= overlap < tile:
        raise ValueError(f"tile_overlap must be in [0, tile_size), got {overlap} for tile {tile}")
    step = tile - overlap
    n = int(np.ceil((length - tile) / step)) + 1
    starts = np.linspace(0, length - tile, n)
    return [int(round(s)) for s in starts]


def tile_windows(height: int, width: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(y0, x0, y1, x1) windows in row-major order."""
    return [(y, x, min(y + tile, height), min(x + tile, width))
            for y in tile_origins(height, tile, overlap) for x in tile_origins(width, tile, overlap)]


def _touches_inner_border(box: np.ndarray, win: tuple[int, int, int, int], hw: tuple[int, int], margin: float) -> bool:
    y0, x0, y1, x1 = win
    h, w = hw
    return bool((x0 > 0 and box[0] <= x0 + margin) or (y0 > 0 and box[1] <= y0 + margin)
                or (x1 < w and box[2] >= x1 - margin) or (y1 < h and box[3] >= y1 - margin))


def merge_tile_instances(items: list[dict], hw: tuple[int, int], iou_thresh: float = 0.5, ioa_thresh: float = 0.6
                         ) -> Raw:
    """Merge per-tile instances (dicts with box, score, cls, cut, y0, x0, crop) into full-image arrays."""
    h, w = hw
    order = sorted(range(len(items)), key=lambda i: (items[i]["cut"], -items[i]["score"]))
    kept: list[dict] = []
    for i in order:
        it = items[i]
        merged = False
        for k in kept:
            if k["cls"] != it["cls"] or it["tile"] in k["tiles"]:
                continue
            b, kb = it["box_int"], k["box_int"]
            iy0, ix0 = max(b[0], kb[0]), max(b[1], kb[1])
            iy1, ix1 = min(b[2], kb[2]), min(b[3], kb[3])
            if iy1 <= iy0 or ix1 <= ix0:
                continue
            a = it["crop"][iy0 - b[0]:iy1 - b[0], ix0 - b[1]:ix1 - b[1]]
            c = k["crop"][iy0 - kb[0]:iy1 - kb[0], ix0 - kb[1]:ix1 - kb[1]]
            inter = float(np.logical_and(a, c).sum())
            if inter == 0:
                continue
            area_a, area_c = float(it["crop"].sum()), float(k["crop"].sum())
            iou = inter / max(area_a + area_c - inter, 1.0)
            ioa = inter / max(min(area_a, area_c), 1.0)
            if iou >= iou_thresh or ioa >= ioa_thresh:
                if it["cut"] and k["cut"]:
                    _unite(k, it)
                merged = True
                break
        if not merged:
            kept.append(dict(it, tiles={it["tile"]}))
    n = len(kept)
    boxes = np.zeros((n, 4), np.float32)
    scores = np.zeros(n, np.float32)
    classes = np.zeros(n, np.int64)
    masks = np.zeros((n, h, w), dtype=bool)
    for j, k in enumerate(sorted(kept, key=lambda d: -d["score"])):
        y0, x0, y1, x1 = k["box_int"]
        masks[j, y0:y1, x0:x1] = k["crop"]
        boxes[j] = k["box"]
        scores[j] = k["score"]
        classes[j] = k["cls"]
    return boxes, scores, classes, masks


def _unite(k: dict, it: dict) -> None:
    """Unite ``it`` into ``k`` (both cut at tile borders): mask union, union box, higher score."""
    a, b = k["box_int"], it["box_int"]
    y0, x0, y1, x1 = min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])
    crop = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    crop[a[0] - y0:a[2] - y0, a[1] - x0:a[3] - x0] |= k["crop"]
    crop[b[0] - y0:b[2] - y0, b[1] - x0:b[3] - x0] |= it["crop"]
    k["crop"], k["box_int"] = crop, (y0, x0, y1, x1)
    k["tiles"] = k["tiles"] | {it["tile"]}
    k["box"] = np.array([min(k["box"][0], it["box"][0]), min(k["box"][1], it["box"][1]),
                         max(k["box"][2], it["box"][2]), max(k["box"][3], it["box"][3])], np.float32)
    k["score"] = max(k["score"], it["score"])


def predict_tiled(infer: Callable[[list[np.ndarray]], list[Raw]], rgb: np.ndarray, tile_size: int,
                  tile_overlap: int = 128, batch_size: int = 4, border_margin: float = 2.0) -> Raw:
    """Run ``infer`` on overlapping tiles of ``rgb`` and merge the instances (full-image coordinates)."""
    h, w = rgb.shape[:2]
    windows = tile_windows(h, w, tile_size, tile_overlap)
    items: list[dict] = []
    for start in range(0, len(windows), batch_size):
        wins = windows[start:start + batch_size]
        raws = infer([np.ascontiguousarray(rgb[y0:y1, x0:x1]) for (y0, x0, y1, x1) in wins])
        for t, (win, (boxes, scores, classes, masks)) in enumerate(zip(wins, raws), start=start):
            y0, x0 = win[0], win[1]
            for i in range(len(scores)):
                m = masks[i]
                ys = np.flatnonzero(m.any(axis=1))
                xs = np.flatnonzero(m.any(axis=0))
                if ys.size == 0:
                    continue
                by0, by1, bx0, bx1 = ys[0], ys[-1] + 1, xs[0], xs[-1] + 1
                box = boxes[i] + np.array([x0, y0, x0, y0], np.float32)
                items.append({
                    "tile": t, "box": box, "score": float(scores[i]), "cls": int(classes[i]),
                    "cut": _touches_inner_border(box, win, (h, w), border_margin),
                    "box_int": (y0 + by0, x0 + bx0, y0 + by1, x0 + bx1),
                    "crop": m[by0:by1, bx0:bx1].copy(),
                })
    return merge_tile_instances(items, (h, w))
