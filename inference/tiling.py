"""Tiled prediction for large images: overlapping tiles, instances cut at tile borders merged.

Each tile goes through the model like an image; its instances arrive already in the full image's
pixels (:class:`TileInstances`, masks as window crops, never full frames). They are then merged
greedily: whole instances (not touching an inner tile border) first, by score; an instance from
another tile with the same class whose mask matches an already kept one (mask IoU >= ``iou_thresh``
or intersection over the smaller mask >= ``ioa_thresh``) is dropped, and if both were cut by a
border their masks are united. Each cell is reported once, provided the overlap between tiles is at
least a cell's diameter (then every cell lies whole inside some tile).

Candidates are looked up through a grid of buckets, so merging n instances costs about n, not n².
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .structures.cropped_masks import CroppedMasks

Raw = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # boxes, scores, class_ids, dense masks
Merged = tuple[np.ndarray, np.ndarray, np.ndarray, CroppedMasks]  # boxes, scores, class_ids, masks
_BUCKET_PX = 256


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


@dataclass
class TileInstances:
    """One tile's instances in full-image pixels.

    window: (y0, x0, y1, x1) the tile's extent in full-image pixels (floats allowed: a tile cut from
    a resampled image); boxes float32 [N, 4]; scores float32 [N]; classes int64 [N]; masks: the
    instances' masks in the full image's frame; margin: px from an inner tile border within which an
    instance counts as cut.
    """

    window: tuple[float, float, float, float]
    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    masks: CroppedMasks
    margin: float = 2.0


def _touches_inner_border(box: np.ndarray, win, hw: tuple[int, int], margin: float) -> bool:
    y0, x0, y1, x1 = win
    h, w = hw
    return bool((x0 > 0 and box[0] <= x0 + margin) or (y0 > 0 and box[1] <= y0 + margin)
                or (x1 < w and box[2] >= x1 - margin) or (y1 < h and box[3] >= y1 - margin))


def _items(tiles: list[TileInstances], hw: tuple[int, int]) -> list[dict]:
    items = []
    for t, tile in enumerate(tiles):
        tight = tile.masks.tight()
        for i in range(len(tile.scores)):
            crop = tight.crops[i]
            if crop.size == 0 or not crop.any():
                continue
            items.append({
                "tile": t, "box": np.asarray(tile.boxes[i], np.float32), "score": float(tile.scores[i]),
                "cls": int(tile.classes[i]), "cut": _touches_inner_border(tile.boxes[i], tile.window, hw, tile.margin),
                "box_int": tuple(int(v) for v in tight.windows[i]), "crop": crop,
            })
    return items


def _buckets(box_int: tuple[int, int, int, int]):
    y0, x0, y1, x1 = box_int
    for by in range(y0 // _BUCKET_PX, max(y0, y1 - 1) // _BUCKET_PX + 1):
        for bx in range(x0 // _BUCKET_PX, max(x0, x1 - 1) // _BUCKET_PX + 1):
            yield by, bx


def merge_tile_instances(items: list[dict], hw: tuple[int, int], iou_thresh: float = 0.5, ioa_thresh: float = 0.6
                         ) -> Merged:
    """Merge per-tile instances (dicts with tile, box, score, cls, cut, box_int, crop) into one set."""
    order = sorted(range(len(items)), key=lambda i: (items[i]["cut"], -items[i]["score"]))
    kept: list[dict] = []
    grid: dict[tuple[int, int], list[int]] = {}
    for i in order:
        it = items[i]
        merged = False
        candidates = sorted({k for key in _buckets(it["box_int"]) for k in grid.get(key, ())})
        for kidx in candidates:
            k = kept[kidx]
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
                    for key in _buckets(k["box_int"]):
                        if kidx not in grid.setdefault(key, []):
                            grid[key].append(kidx)
                merged = True
                break
        if not merged:
            kept.append(dict(it, tiles={it["tile"]}))
            for key in _buckets(it["box_int"]):
                grid.setdefault(key, []).append(len(kept) - 1)
    kept.sort(key=lambda d: -d["score"])
    n = len(kept)
    boxes = np.array([k["box"] for k in kept], np.float32).reshape(n, 4)
    scores = np.array([k["score"] for k in kept], np.float32)
    classes = np.array([k["cls"] for k in kept], np.int64)
    masks = CroppedMasks((int(hw[0]), int(hw[1])), np.array([k["box_int"] for k in kept], np.int64).reshape(n, 4),
                         [k["crop"] for k in kept])
    return boxes, scores, classes, masks


def merge_tiles(tiles: list[TileInstances], hw: tuple[int, int]) -> Merged:
    """All tiles' instances merged into one set in full-image pixels (each cell once)."""
    return merge_tile_instances(_items(tiles, hw), hw)


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
                  tile_overlap: int = 128, batch_size: int = 4, border_margin: float = 2.0) -> Merged:
    """Run ``infer`` (tiles -> per tile boxes, scores, classes, dense bool masks in tile pixels) on
    overlapping tiles of ``rgb`` and merge the instances (full-image pixels, masks as crops)."""
    h, w = rgb.shape[:2]
    windows = tile_windows(h, w, tile_size, tile_overlap)
    tiles: list[TileInstances] = []
    for start in range(0, len(windows), batch_size):
        wins = windows[start:start + batch_size]
        raws = infer([np.ascontiguousarray(rgb[y0:y1, x0:x1]) for (y0, x0, y1, x1) in wins])
        for win, (boxes, scores, classes, masks) in zip(wins, raws):
            y0, x0 = win[0], win[1]
            local = CroppedMasks.from_dense(masks)
            shifted = CroppedMasks((h, w), local.windows + np.array([y0, x0, y0, x0]), local.crops)
            tiles.append(TileInstances(win, boxes + np.array([x0, y0, x0, y0], np.float32), scores, classes,
                                       shifted, border_margin))
    return merge_tiles(tiles, (h, w))
