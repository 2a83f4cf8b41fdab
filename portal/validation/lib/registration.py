"""Registering a fluorescence (stain) image over its brightfield field (no Django here).

A registration is a similarity transform from stain-image pixels to field pixels::

    [x_field, y_field] = scale * R(rotation) @ [x_stain, y_stain] + [offset_x, offset_y]

with ``R`` the counter-clockwise rotation in image coordinates (y down), which is what the browser's
canvas ``setTransform(a, b, c, d, e, f)`` takes as ``a = d = scale*cos``, ``b = -c = scale*sin``.

Two ways to get one:

- ``similarity_from_two_points``: the user clicks two points on the stain image and the same two points
  on the field; two point pairs fix scale, rotation and translation exactly.
- ``align_by_phase_correlation``: translation only, found by phase correlation of downsampled images;
  the scale comes from the pixel sizes of both images (``stain_um_per_px / field_um_per_px``). The peak is
  taken on the magnitude of the correlation, so a fluorescence image (bright cells on dark) aligns with
  brightfield (dark cells on bright) just as well as with a copy of itself.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage

MIN_POINT_DISTANCE_PX = 5.0
MIN_SCALE, MAX_SCALE = 0.05, 20.0
ALIGN_MAX_SIDE_PX = 512
LOW_PASS_SIGMA = 0.05  # cycles per pixel: weights the whitened spectrum towards cell-sized structure


class RegistrationError(ValueError):
    """The points or images cannot give a registration; the message says why, in words for the user."""


@dataclass(frozen=True)
class Similarity:
    """Stain pixels to field pixels: ``scale``, ``rotation_rad`` (counter-clockwise, y down), offsets."""

    scale: float = 1.0
    rotation_rad: float = 0.0
    offset_x_px: float = 0.0
    offset_y_px: float = 0.0

    def apply(self, x: float, y: float) -> tuple[float, float]:
        """Where the stain pixel (x, y) lies on the field."""
        c, s = self.scale * math.cos(self.rotation_rad), self.scale * math.sin(self.rotation_rad)
        return c * x - s * y + self.offset_x_px, s * x + c * y + self.offset_y_px

    def inverse_apply(self, x: float, y: float) -> tuple[float, float]:
        """Where the field pixel (x, y) lies on the stain image."""
        dx, dy = x - self.offset_x_px, y - self.offset_y_px
        c, s = math.cos(self.rotation_rad) / self.scale, math.sin(self.rotation_rad) / self.scale
        return c * dx + s * dy, -s * dx + c * dy


def _check_scale(scale: float) -> None:
    if not (MIN_SCALE <= scale <= MAX_SCALE):
        raise RegistrationError(
            f"The registration would scale the stain image by {scale:.3g}; allowed is {MIN_SCALE} to {MAX_SCALE}. "
            "Check the points or the pixel sizes.")


def similarity_from_two_points(stain_points, field_points) -> Similarity:
    """The similarity mapping two stain points onto two field points (each a pair of (x, y) pixels).

    Raises ``RegistrationError`` when a pair is not two distinct points at least
    ``MIN_POINT_DISTANCE_PX`` apart, or the scale would be implausible.
    """
    try:
        (sx1, sy1), (sx2, sy2) = ((float(x), float(y)) for x, y in stain_points)
        (fx1, fy1), (fx2, fy2) = ((float(x), float(y)) for x, y in field_points)
    except (TypeError, ValueError):
        raise RegistrationError("Give exactly two (x, y) points on each image.") from None
    if not all(math.isfinite(v) for v in (sx1, sy1, sx2, sy2, fx1, fy1, fx2, fy2)):
        raise RegistrationError("Point coordinates must be finite numbers.")
    z1, z2 = complex(sx1, sy1), complex(sx2, sy2)
    w1, w2 = complex(fx1, fy1), complex(fx2, fy2)
    if abs(z2 - z1) < MIN_POINT_DISTANCE_PX or abs(w2 - w1) < MIN_POINT_DISTANCE_PX:
        raise RegistrationError(
            f"The two points on each image must be at least {MIN_POINT_DISTANCE_PX:g} px apart.")
    a = (w2 - w1) / (z2 - z1)  # scale and rotation as one complex factor
    b = w1 - a * z1
    _check_scale(abs(a))
    return Similarity(scale=abs(a), rotation_rad=math.atan2(a.imag, a.real), offset_x_px=b.real, offset_y_px=b.imag)


def _grey(pixels: np.ndarray) -> np.ndarray:
    """Float greyscale of (H, W) or (H, W, C) pixels; colour by the brightest channel (one fluorophore)."""
    arr = np.asarray(pixels, dtype=np.float64)
    return arr.max(axis=2) if arr.ndim == 3 else arr


def _resize(arr: np.ndarray, factor: float) -> np.ndarray:
    height, width = arr.shape
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.asarray(PILImage.fromarray(arr.astype(np.float32), mode="F").resize(size, PILImage.Resampling.BILINEAR),
                      dtype=np.float64)


def _prepare(arr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Zero-mean, unit-variance, zero-padded to ``shape`` (padding to twice the size avoids wrap-around)."""
    arr = arr - arr.mean()
    std = arr.std()
    if std > 0:
        arr = arr / std
    out = np.zeros(shape)
    out[: arr.shape[0], : arr.shape[1]] = arr
    return out


def _subpixel(values: np.ndarray, i: int) -> float:
    """Parabolic refinement of a peak at index ``i`` of a circular 1-D profile."""
    left, centre, right = values[i - 1], values[i], values[(i + 1) % len(values)]
    denominator = left - 2 * centre + right
    return 0.0 if denominator == 0 else 0.5 * (left - right) / denominator


def phase_correlation_shift(reference: np.ndarray, moving: np.ndarray) -> tuple[float, float, float]:
    """The shift (dx, dy) with ``reference(p) ~ ±moving(p - (dx, dy))``, and the peak's strength.

    Both are 2-D float arrays; they are padded to a common size. The strength is the peak of the
    normalised correlation's magnitude over its mean magnitude (about 1 for noise, large for a match).
    """
    shape = (max(reference.shape[0], moving.shape[0]) * 2, max(reference.shape[1], moving.shape[1]) * 2)
    f_ref = np.fft.fft2(_prepare(reference, shape))
    f_mov = np.fft.fft2(_prepare(moving, shape))
    cross = f_ref * np.conj(f_mov)
    cross /= np.maximum(np.abs(cross), 1e-12)
    # pure phase gives pixel noise the same weight as cells; a Gaussian low-pass keeps the peak where cells
    # match (a biased peak of a few pixels otherwise)
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.fftfreq(shape[1])[None, :]
    cross *= np.exp(-(kx**2 + ky**2) / (2 * LOW_PASS_SIGMA**2))
    magnitude = np.abs(np.fft.ifft2(cross))
    peak_y, peak_x = np.unravel_index(int(np.argmax(magnitude)), magnitude.shape)
    dy = peak_y + _subpixel(magnitude[:, peak_x], peak_y)
    dx = peak_x + _subpixel(magnitude[peak_y, :], peak_x)
    if dy > shape[0] / 2:
        dy -= shape[0]
    if dx > shape[1] / 2:
        dx -= shape[1]
    strength = float(magnitude[peak_y, peak_x] / max(magnitude.mean(), 1e-12))
    return float(dx), float(dy), strength


def _ncc(reference: np.ndarray, moving: np.ndarray, dx: int, dy: int) -> float:
    """Pearson correlation of the overlap of ``reference(p)`` and ``moving(p - (dx, dy))`` (0 when the
    overlap is under a quarter of the smaller image)."""
    top, bottom = max(0, dy), min(reference.shape[0], moving.shape[0] + dy)
    left, right = max(0, dx), min(reference.shape[1], moving.shape[1] + dx)
    if (bottom - top) * (right - left) < 0.25 * min(reference.size, moving.size):
        return 0.0
    a = reference[top:bottom, left:right]
    b = moving[top - dy:bottom - dy, left - dx:right - dx]
    a, b = a - a.mean(), b - b.mean()
    denominator = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return 0.0 if denominator == 0 else float((a * b).sum()) / denominator


def refine_shift(reference: np.ndarray, moving: np.ndarray, dx: float, dy: float, *,
                 max_steps: int = 40) -> tuple[float, float]:
    """Refine a shift by normalised cross-correlation over the overlap only: climb from the rounded start
    to the best whole-pixel shift (each step to the best of the 8 neighbours), then to a fraction of a
    pixel by a parabola through the best and its neighbours.

    Phase correlation of zero-padded, low-passed images has a broad peak that leans towards shifts with
    more overlap; normalising by the overlap removes that pull. The sign of the correlation at the start
    decides whether a match is a positive (same contrast) or a negative (inverted contrast) one.
    """
    x, y = round(dx), round(dy)
    sign = -1.0 if _ncc(reference, moving, x, y) < 0 else 1.0
    cache: dict[tuple[int, int], float] = {}

    def score(i: int, j: int) -> float:
        if (i, j) not in cache:
            cache[(i, j)] = sign * _ncc(reference, moving, i, j)
        return cache[(i, j)]

    for _ in range(max_steps):
        best = max(((x + i, y + j) for i in (-1, 0, 1) for j in (-1, 0, 1)), key=lambda p: score(*p))
        if best == (x, y):
            break
        x, y = best
    row = np.array([score(x - 1, y), score(x, y), score(x + 1, y)])
    column = np.array([score(x, y - 1), score(x, y), score(x, y + 1)])
    return x + _subpixel(row, 1), y + _subpixel(column, 1)


def align_by_phase_correlation(field_pixels: np.ndarray, stain_pixels: np.ndarray, *, scale: float,
                               max_side_px: int = ALIGN_MAX_SIDE_PX) -> tuple[Similarity, float]:
    """Translation of the stain image over the field at a known ``scale`` (stain px to field px).

    Both images are downsampled so the field's longer side is at most ``max_side_px``; the stain image is
    resampled onto the field's (downsampled) pixel grid first. Returns the similarity (no rotation) and
    the correlation peak's strength (see ``phase_correlation_shift``).
    """
    _check_scale(scale)
    field = _grey(field_pixels)
    stain = _grey(stain_pixels)
    factor = min(1.0, max_side_px / max(field.shape))
    field_small = _resize(field, factor) if factor < 1.0 else field
    stain_small = _resize(stain, scale * factor)
    dx, dy, strength = phase_correlation_shift(field_small, stain_small)
    dx, dy = refine_shift(field_small, stain_small, dx, dy)
    # resizing maps pixel centres ((p + 0.5) * factor - 0.5), hence the half-pixel term
    half = 0.5 * (scale - 1.0)
    return Similarity(scale=scale, rotation_rad=0.0, offset_x_px=dx / factor + half,
                      offset_y_px=dy / factor + half), strength


def scale_from_pixel_sizes(*, stain_um_per_px: float | None, field_um_per_px: float | None,
                           stain_width: int, field_width: int) -> tuple[float, str]:
    """Stain px to field px from both pixel sizes, or (when one is unknown) from the widths, assuming the
    two images show the same field of view. Returns the scale and how it was found."""
    if stain_um_per_px and field_um_per_px and stain_um_per_px > 0 and field_um_per_px > 0:
        return stain_um_per_px / field_um_per_px, "pixel_sizes"
    return field_width / stain_width, "image_widths"


def stain_display(pixels: np.ndarray, *, low_percentile: float = 0.5, high_percentile: float = 99.9) -> np.ndarray:
    """An 8-bit greyscale view of a fluorescence image for the overlay: the brightest channel, stretched
    linearly so its ``low_percentile``..``high_percentile`` fill 0..255 (dim signal becomes visible)."""
    grey = _grey(pixels)
    low, high = np.percentile(grey, [low_percentile, high_percentile])
    if high <= low:
        return np.clip(grey, 0, 255).astype(np.uint8)
    return np.clip((grey - low) * (255.0 / (high - low)), 0, 255).astype(np.uint8)
