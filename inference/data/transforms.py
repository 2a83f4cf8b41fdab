"""Augmentations for microscopy images, applied to an image with its boxes and masks together.

Each augmentation is a small callable ``aug(sample, rng) -> sample`` over a :class:`Sample`:
``image`` uint8 [H, W, C], ``boxes`` float32 [N, 4] (x1, y1, x2, y2, pixels), ``masks`` bool [N, H, W].
Geometric ones (resize, flips, 90° rotations) keep boxes axis-aligned, so boxes are transformed
exactly, as detectron2 does, rather than recomputed from the masks.

Resize follows the one rule of :mod:`inference.pixels` (detectron2's ``ResizeShortestEdge``: the new
size rounded with ``int(x + 0.5)``, uint8 images through PIL bilinear, masks through PIL nearest),
the same functions the predictor uses.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from ..pixels import resize_mask, resize_rgb, shortest_edge_size


@dataclass
class Sample:
    image: np.ndarray
    boxes: np.ndarray
    masks: np.ndarray

    @property
    def hw(self) -> tuple[int, int]:
        return self.image.shape[0], self.image.shape[1]


def resize_image(image: np.ndarray, new_hw: tuple[int, int]) -> np.ndarray:
    """The one image resize rule (:func:`inference.pixels.resize_rgb`)."""
    return resize_rgb(image, new_hw)


def resize_masks(masks: np.ndarray, new_hw: tuple[int, int]) -> np.ndarray:
    """Each bool [H, W] mask of [N, H, W] by :func:`inference.pixels.resize_mask`."""
    if masks.shape[1:] == tuple(new_hw):
        return masks
    out = np.zeros((len(masks),) + tuple(new_hw), bool)
    for i, m in enumerate(masks):
        out[i] = resize_mask(m, new_hw)
    return out


class ResizeShortestEdge:
    """Resize so the short edge is one of ``short_edge_lengths`` ("choice") or drawn uniformly between
    its two values ("range", a scale jitter), the long edge capped at ``max_size``."""

    def __init__(self, short_edge_lengths: Sequence[int] | int, max_size: int = 1333, sample_style: str = "choice"):
        if isinstance(short_edge_lengths, int):
            short_edge_lengths = (short_edge_lengths, short_edge_lengths)
        self.lengths = tuple(int(v) for v in short_edge_lengths)
        if sample_style not in ("choice", "range"):
            raise ValueError(f"sample_style must be 'choice' or 'range', not {sample_style!r}")
        if sample_style == "range" and len(self.lengths) != 2:
            raise ValueError("sample_style 'range' needs two short edge lengths (min, max)")
        self.max_size = int(max_size)
        self.sample_style = sample_style

    def __call__(self, s: Sample, rng: np.random.Generator) -> Sample:
        if self.sample_style == "range":
            short = int(rng.integers(self.lengths[0], self.lengths[1] + 1))
        else:
            short = self.lengths[int(rng.integers(len(self.lengths)))] if len(self.lengths) > 1 else self.lengths[0]
        h, w = s.hw
        nh, nw = shortest_edge_size(h, w, short, self.max_size)
        boxes = s.boxes * np.array([nw / w, nh / h, nw / w, nh / h], np.float32)
        return Sample(resize_image(s.image, (nh, nw)), boxes.astype(np.float32), resize_masks(s.masks, (nh, nw)))


class RandomFlip:
    def __init__(self, prob: float = 0.5, horizontal: bool = True, vertical: bool = False):
        if horizontal == vertical:
            raise ValueError("exactly one of horizontal/vertical")
        self.prob, self.horizontal = prob, horizontal

    def __call__(self, s: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.prob:
            return s
        h, w = s.hw
        b = s.boxes.copy()
        if self.horizontal:
            b[:, [0, 2]] = w - s.boxes[:, [2, 0]]
            return Sample(np.ascontiguousarray(s.image[:, ::-1]), b, np.ascontiguousarray(s.masks[:, :, ::-1]))
        b[:, [1, 3]] = h - s.boxes[:, [3, 1]]
        return Sample(np.ascontiguousarray(s.image[::-1]), b, np.ascontiguousarray(s.masks[:, ::-1]))


class RandomRotate90:
    """Rotate by k * 90° counter-clockwise, k drawn from {0, 1, 2, 3} (cells have no up)."""

    def __init__(self, prob: float = 1.0):
        self.prob = prob

    def __call__(self, s: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.prob:
            return s
        k = int(rng.integers(4))
        image, boxes, masks = s.image, s.boxes.copy(), s.masks
        for _ in range(k):
            w = image.shape[1]
            # (x, y) -> (y, w - x) for np.rot90 (counter-clockwise)
            boxes = np.stack([boxes[:, 1], w - boxes[:, 2], boxes[:, 3], w - boxes[:, 0]], axis=1)
            image = np.rot90(image)
            masks = np.rot90(masks, axes=(1, 2))
        return Sample(np.ascontiguousarray(image), boxes.astype(np.float32), np.ascontiguousarray(masks))


class RandomPhotometric:
    """Brightness (multiply), contrast (blend with the mean) and gamma, each drawn uniformly."""

    def __init__(self, brightness=(0.9, 1.1), contrast=(0.9, 1.1), gamma=(0.9, 1.1), prob: float = 1.0):
        self.brightness, self.contrast, self.gamma, self.prob = brightness, contrast, gamma, prob

    def __call__(self, s: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.prob:
            return s
        img = s.image.astype(np.float32)
        img *= rng.uniform(*self.brightness)
        c = rng.uniform(*self.contrast)
        img = img.mean() + c * (img - img.mean())
        g = rng.uniform(*self.gamma)
        img = 255.0 * (np.clip(img, 0, 255) / 255.0) ** g
        return Sample(np.clip(img + 0.5, 0, 255).astype(np.uint8), s.boxes, s.masks)


class RandomDefocus:
    """Gaussian blur of sigma drawn from ``sigma`` (pixels), with probability ``prob``: slight defocus."""

    def __init__(self, sigma=(0.3, 1.5), prob: float = 0.3):
        self.sigma, self.prob = sigma, prob

    def __call__(self, s: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.prob:
            return s
        sigma = float(rng.uniform(*self.sigma))
        img = np.asarray(Image.fromarray(s.image).filter(ImageFilter.GaussianBlur(sigma)))
        return Sample(img, s.boxes, s.masks)


def apply_augmentations(augs, s: Sample, rng: np.random.Generator) -> Sample:
    for aug in augs:
        s = aug(s, rng)
    return s
