"""Augmentations for microscopy images, applied to an image with its boxes and masks together.

Each augmentation is a small callable ``aug(sample, rng) -> sample`` over a :class:`Sample`:
``image`` uint8 [H, W, C], ``boxes`` float32 [N, 4] (x1, y1, x2, y2, pixels), ``masks`` bool [N, H, W].
Geometric ones (resize, flips, 90° rotations) keep boxes axis-aligned, so boxes are transformed
exactly, as detectron2 does, rather than recomputed from the masks.

Resize follows the one rule of :mod:`inference.pixels` (detectron2's ``ResizeShortestEdge``: the new
size rounded with ``int(x + 0.5)``, uint8 images through PIL bilinear, masks through PIL nearest),
the same functions the predictor uses. :class:`ResizeToPixelSize` instead resamples every image to
one physical pixel size (µm per pixel, from the sample's ``um_per_px``), so that a cell always has
about the same size in pixels, and crops it.

The photometric ones imitate what differs between microscopes and cameras: brightness, contrast,
gamma, uneven illumination, white balance, grayscale cameras, sensor noise, defocus and JPEG
compression. They change the image only.
"""
from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from ..pixels import resize_mask, resize_rgb, scaled_size, shortest_edge_size


@dataclass
class Sample:
    image: np.ndarray
    boxes: np.ndarray
    masks: np.ndarray
    um_per_px: float | None = None   # pixel size of ``image`` in µm, when known

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
        um = None if s.um_per_px is None else s.um_per_px * h / nh
        return Sample(resize_image(s.image, (nh, nw)), boxes.astype(np.float32), resize_masks(s.masks, (nh, nw)), um)


def boxes_of_masks(masks: np.ndarray) -> np.ndarray:
    """Tight xyxy boxes (pixel edges, float32 [N, 4]) of bool masks [N, H, W]; empty masks give zeros."""
    out = np.zeros((len(masks), 4), np.float32)
    for i, m in enumerate(masks):
        ys = np.flatnonzero(m.any(axis=1))
        xs = np.flatnonzero(m.any(axis=0))
        if len(ys):
            out[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return out


class ResizeToPixelSize:
    """Resample to ``um_per_px`` (times a factor drawn from ``jitter``) and crop at random to at most
    ``crop`` (H, W) pixels: training at one physical scale, whatever the image's pixel size.

    The crop is taken in the original pixels first (only what is kept is resampled); boxes are
    recomputed from the cropped masks (a cut cell gets the box of its visible part). A sample without
    ``um_per_px`` is an error: physical-scale training needs the pixel size of every image.
    """

    def __init__(self, um_per_px: float, jitter: Sequence[float] = (1.0, 1.0), crop: Sequence[int] | None = None):
        if not um_per_px > 0:
            raise ValueError(f"um_per_px must be positive, got {um_per_px!r}")
        self.um_per_px = float(um_per_px)
        self.jitter = (float(jitter[0]), float(jitter[1]))
        self.crop = (int(crop[0]), int(crop[1])) if crop is not None and min(crop) > 0 else None

    def __call__(self, s: Sample, rng: np.random.Generator) -> Sample:
        if s.um_per_px is None or not s.um_per_px > 0:
            raise ValueError("physical-scale training needs um_per_px for every image")
        target = self.um_per_px * float(rng.uniform(*self.jitter))
        scale = float(s.um_per_px) / target          # > 1: the image is enlarged
        h, w = s.hw
        image, masks = s.image, s.masks
        if self.crop is not None:
            ch, cw = (min(h, math.ceil(c / scale)) for c in self.crop)
            y0 = int(rng.integers(0, h - ch + 1))
            x0 = int(rng.integers(0, w - cw + 1))
            image = image[y0:y0 + ch, x0:x0 + cw]
            masks = masks[:, y0:y0 + ch, x0:x0 + cw]
            h, w = ch, cw
        nh, nw = scaled_size(h, w, scale)
        if self.crop is not None:
            nh, nw = min(nh, self.crop[0]), min(nw, self.crop[1])
        image = resize_image(np.ascontiguousarray(image), (nh, nw))
        masks = resize_masks(np.ascontiguousarray(masks), (nh, nw))
        return Sample(image, boxes_of_masks(masks), masks, target)


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
            return Sample(np.ascontiguousarray(s.image[:, ::-1]), b, np.ascontiguousarray(s.masks[:, :, ::-1]), s.um_per_px)
        b[:, [1, 3]] = h - s.boxes[:, [3, 1]]
        return Sample(np.ascontiguousarray(s.image[::-1]), b, np.ascontiguousarray(s.masks[:, ::-1]), s.um_per_px)


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
        return Sample(np.ascontiguousarray(image), boxes.astype(np.float32), np.ascontiguousarray(masks), s.um_per_px)


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
        return Sample(np.clip(img + 0.5, 0, 255).astype(np.uint8), s.boxes, s.masks, s.um_per_px)


class RandomDefocus:
    """Gaussian blur of sigma drawn from ``sigma`` (pixels), with probability ``prob``: slight defocus."""

    def __init__(self, sigma=(0.3, 1.5), prob: float = 0.3):
        self.sigma, self.prob = sigma, prob

    def __call__(self, s: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.prob:
            return s
        sigma = float(rng.uniform(*self.sigma))
        img = np.asarray(Image.fromarray(s.image).filter(ImageFilter.GaussianBlur(sigma)))
        return Sample(img, s.boxes, s.masks, s.um_per_px)


class RandomIllumination:
    """Uneven lamp: multiply by a linear tilt (up to ``tilt`` relative change across the frame, random
    direction) and a vignette (relative fall-off ``vignette`` drawn per image, off-centre)."""

    def __init__(self, tilt: float = 0.2, vignette: Sequence[float] = (0.0, 0.3), prob: float = 1.0):
        self.tilt, self.vignette, self.prob = float(tilt), (float(vignette[0]), float(vignette[1])), prob

    def __call__(self, s: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.prob:
            return s
        h, w = s.hw
        y = (np.arange(h, dtype=np.float32) / max(1, h - 1) - 0.5)[:, None]
        x = (np.arange(w, dtype=np.float32) / max(1, w - 1) - 0.5)[None, :]
        a = rng.uniform(0, 2 * math.pi)
        t = rng.uniform(0, self.tilt)
        cy, cx = rng.uniform(-0.25, 0.25, 2)
        gain = (1.0 + t * (math.cos(a) * x + math.sin(a) * y)) \
            * (1.0 - rng.uniform(*self.vignette) * 2.0 * ((y - cy) ** 2 + (x - cx) ** 2))
        img = s.image.astype(np.float32) * np.clip(gain, 0.05, None)[..., None]
        return Sample(np.clip(img + 0.5, 0, 255).astype(np.uint8), s.boxes, s.masks, s.um_per_px)


class RandomWhiteBalance:
    """Multiply each colour channel by its own gain drawn from ``gains`` (a camera's white balance)."""

    def __init__(self, gains: Sequence[float] = (0.85, 1.15), prob: float = 1.0):
        self.gains, self.prob = (float(gains[0]), float(gains[1])), prob

    def __call__(self, s: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.prob or s.image.shape[2] < 3:
            return s
        g = rng.uniform(*self.gains, size=3).astype(np.float32)
        img = s.image.astype(np.float32) * g[None, None, :]
        return Sample(np.clip(img + 0.5, 0, 255).astype(np.uint8), s.boxes, s.masks, s.um_per_px)


class RandomGrayscale:
    """Replace the colours by their luminance (ITU-R 601 weights) in all channels: a monochrome camera."""

    def __init__(self, prob: float = 0.1):
        self.prob = prob

    def __call__(self, s: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.prob or s.image.shape[2] < 3:
            return s
        lum = s.image[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        img = np.repeat(np.clip(lum + 0.5, 0, 255).astype(np.uint8)[..., None], s.image.shape[2], axis=2)
        return Sample(img, s.boxes, s.masks, s.um_per_px)


class RandomNoise:
    """Sensor noise: Gaussian read noise of std drawn from ``sigma`` (grey levels) plus shot noise
    growing with the square root of the signal (the same std at grey level 128)."""

    def __init__(self, sigma: Sequence[float] = (1.0, 6.0), prob: float = 1.0):
        self.sigma, self.prob = (float(sigma[0]), float(sigma[1])), prob

    def __call__(self, s: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.prob:
            return s
        img = s.image.astype(np.float32)
        read, shot = rng.uniform(*self.sigma, size=2) / math.sqrt(2.0)
        std = np.sqrt(read ** 2 + shot ** 2 * img / 128.0)
        img = img + rng.standard_normal(img.shape, dtype=np.float32) * std
        return Sample(np.clip(img + 0.5, 0, 255).astype(np.uint8), s.boxes, s.masks, s.um_per_px)


class RandomJPEG:
    """Encode and decode as JPEG of quality drawn from ``quality`` (integers, inclusive)."""

    def __init__(self, quality: Sequence[int] = (40, 95), prob: float = 1.0):
        self.quality, self.prob = (int(quality[0]), int(quality[1])), prob

    def __call__(self, s: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.prob:
            return s
        buf = io.BytesIO()
        Image.fromarray(s.image).save(buf, format="JPEG", quality=int(rng.integers(self.quality[0], self.quality[1] + 1)))
        buf.seek(0)
        with Image.open(buf) as im:
            img = np.asarray(im.convert("RGB"))
        return Sample(img, s.boxes, s.masks, s.um_per_px)


def apply_augmentations(augs, s: Sample, rng: np.random.Generator) -> Sample:
    for aug in augs:
        s = aug(s, rng)
    return s
