"""Instance masks kept compact: each instance's bool mask inside its own window of the image.

A full-frame bool [N, H, W] array of an 8000x8000 field with 3,000 cells would take 192 GB; the same
masks as window crops take what the cells cover. Measurements and COCO RLE are computed from the
crops directly, never from a full frame. Torch-free (numpy, pycocotools).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class CroppedMasks:
    """N masks of an image of ``image_size`` (H, W).

    windows: int64 [N, 4] (y0, x0, y1, x1) in image pixels, inside the image; crops: N bool arrays,
    crop ``i`` of shape (y1 - y0, x1 - x0); pixels outside a window are background.
    """

    image_size: tuple[int, int]
    windows: np.ndarray
    crops: list[np.ndarray]

    def __post_init__(self) -> None:
        self.windows = np.asarray(self.windows, dtype=np.int64).reshape(-1, 4)
        if len(self.crops) != len(self.windows):
            raise ValueError(f"{len(self.crops)} crops for {len(self.windows)} windows")
        h, w = self.image_size
        for (y0, x0, y1, x1), crop in zip(self.windows.tolist(), self.crops):
            if not (0 <= y0 <= y1 <= h and 0 <= x0 <= x1 <= w) or crop.shape != (y1 - y0, x1 - x0):
                raise ValueError(f"crop {crop.shape} does not fit window {(y0, x0, y1, x1)} of a {w}x{h} image")

    def __len__(self) -> int:
        return len(self.crops)

    @classmethod
    def from_dense(cls, masks: np.ndarray) -> CroppedMasks:
        """From bool [N, H, W]: each mask cropped to its tight bounding window (empty: a 0x0 window)."""
        masks = np.asarray(masks, dtype=bool)
        n, h, w = masks.shape
        windows, crops = np.zeros((n, 4), np.int64), []
        for i in range(n):
            ys = np.flatnonzero(masks[i].any(axis=1))
            xs = np.flatnonzero(masks[i].any(axis=0))
            if ys.size == 0:
                crops.append(np.zeros((0, 0), bool))
                continue
            y0, y1, x0, x1 = ys[0], ys[-1] + 1, xs[0], xs[-1] + 1
            windows[i] = (y0, x0, y1, x1)
            crops.append(masks[i, y0:y1, x0:x1].copy())
        return cls((h, w), windows, crops)

    @classmethod
    def empty(cls, image_size: tuple[int, int]) -> CroppedMasks:
        return cls((int(image_size[0]), int(image_size[1])), np.zeros((0, 4), np.int64), [])

    def subset(self, index: Sequence[int] | np.ndarray) -> CroppedMasks:
        idx = [int(i) for i in np.asarray(index).reshape(-1)]
        return CroppedMasks(self.image_size, self.windows[idx] if idx else np.zeros((0, 4), np.int64),
                            [self.crops[i] for i in idx])

    def tight(self) -> CroppedMasks:
        """Each crop trimmed to its mask's bounding window (an empty mask keeps a 0x0 window)."""
        windows, crops = self.windows.copy(), []
        for i, crop in enumerate(self.crops):
            ys = np.flatnonzero(crop.any(axis=1))
            xs = np.flatnonzero(crop.any(axis=0))
            if ys.size == 0:
                windows[i] = (windows[i, 0], windows[i, 1], windows[i, 0], windows[i, 1])
                crops.append(np.zeros((0, 0), bool))
                continue
            y0, x0 = windows[i, 0], windows[i, 1]
            windows[i] = (y0 + ys[0], x0 + xs[0], y0 + ys[-1] + 1, x0 + xs[-1] + 1)
            crops.append(np.ascontiguousarray(crop[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1]))
        return CroppedMasks(self.image_size, windows, crops)

    def dense(self) -> np.ndarray:
        """bool [N, H, W] (memory N x H x W: for small images and tests)."""
        h, w = self.image_size
        out = np.zeros((len(self), h, w), dtype=bool)
        for i, ((y0, x0, y1, x1), crop) in enumerate(zip(self.windows.tolist(), self.crops)):
            out[i, y0:y1, x0:x1] = crop
        return out

    def areas(self) -> np.ndarray:
        """float64 [N] pixel counts."""
        return np.array([float(c.sum()) for c in self.crops], dtype=np.float64)

    def centroids(self) -> np.ndarray:
        """float64 [N, 2] (x, y), pixel centres at +0.5 as in :mod:`inference.measure`; NaN when empty."""
        out = np.full((len(self), 2), np.nan)
        for i, ((y0, x0, _y1, _x1), crop) in enumerate(zip(self.windows.tolist(), self.crops)):
            area = float(crop.sum())
            if area == 0:
                continue
            out[i, 0] = crop.sum(axis=0, dtype=np.float64) @ (np.arange(crop.shape[1]) + x0 + 0.5) / area
            out[i, 1] = crop.sum(axis=1, dtype=np.float64) @ (np.arange(crop.shape[0]) + y0 + 0.5) / area
        return out

    def to_rle(self) -> list[dict]:
        """COCO RLE per instance (``counts`` as str), identical to encoding the full-frame mask."""
        from pycocotools import mask as mask_util

        h, w = self.image_size
        if not len(self):
            return []
        uncompressed = [{"size": [h, w], "counts": _column_major_counts(win, crop, h, w)}
                        for win, crop in zip(self.windows.tolist(), self.crops)]
        rles = mask_util.frPyObjects(uncompressed, h, w)
        for r in rles:
            r["counts"] = r["counts"].decode("ascii")
        return rles


def _column_major_counts(window: Sequence[int], crop: np.ndarray, h: int, w: int) -> list[int]:
    """Uncompressed COCO counts (alternating background/foreground runs, column-major) of one mask."""
    y0, x0 = int(window[0]), int(window[1])
    cols = np.zeros((crop.shape[1], crop.shape[0] + 2), np.int8)
    cols[:, 1:-1] = crop.T
    d = np.diff(cols, axis=1)
    sj, si = np.nonzero(d == 1)
    ej, ei = np.nonzero(d == -1)
    starts = (x0 + sj) * h + y0 + si
    ends = (x0 + ej) * h + y0 + ei
    if starts.size == 0:
        return [h * w]
    # runs that continue from the bottom of one column to the top of the next are one run
    joined = np.flatnonzero(ends[:-1] == starts[1:])
    if joined.size:
        keep_start = np.ones(starts.size, bool)
        keep_start[joined + 1] = False
        keep_end = np.ones(ends.size, bool)
        keep_end[joined] = False
        starts, ends = starts[keep_start], ends[keep_end]
    counts = np.empty(2 * starts.size + 1, np.int64)
    counts[0] = starts[0]
    counts[1::2] = ends - starts
    counts[2:-1:2] = starts[1:] - ends[:-1]
    counts[-1] = h * w - ends[-1]
    return counts[:-1].tolist() if counts[-1] == 0 else counts.tolist()
