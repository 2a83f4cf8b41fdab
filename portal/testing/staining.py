"""Test helpers for stain entry: synthetic fluorescence images that match ``validation.png_bytes`` fields.

``validation.png_bytes`` draws dark round cells at ``(x + 20, y + 20)`` for x in 20, 80, ... and y in
20, 100, ...; ``fluorescence_png`` draws the same cells bright on dark, as a camera whose image is
shifted by ``shift`` field pixels and has ``scale`` field pixels per stain pixel would see them.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage


def field_cell_centres(width: int = 400, height: int = 300) -> list[tuple[float, float]]:
    """The cell centres of a ``validation.png_bytes`` image, in field pixels."""
    return [(x + 20.0, y + 20.0) for x in range(20, width, 60) for y in range(20, height, 80)]


def fluorescence_pixels(*, width: int = 400, height: int = 300, shift: tuple[float, float] = (0.0, 0.0),
                        scale: float = 1.0, seed: int = 0) -> np.ndarray:
    """8-bit greyscale fluorescence of the field's cells: stain pixel p shows field point scale * p + shift."""
    rng = np.random.default_rng(seed)
    out_w, out_h = round(width / scale), round(height / scale)
    yy, xx = np.mgrid[0:out_h, 0:out_w]
    image = 20 + rng.normal(0, 3, (out_h, out_w))
    for fx, fy in field_cell_centres(width, height):
        sx, sy = (fx - shift[0]) / scale, (fy - shift[1]) / scale
        image += 200 * np.exp(-((xx - sx) ** 2 + (yy - sy) ** 2) / (2 * (9.0 / scale) ** 2))
    return np.clip(image, 0, 255).astype(np.uint8)


def fluorescence_png(**kwargs) -> bytes:
    """``fluorescence_pixels`` as PNG bytes."""
    out = io.BytesIO()
    PILImage.fromarray(fluorescence_pixels(**kwargs), mode="L").save(out, format="PNG")
    return out.getvalue()


def fluorescence_tiff16(**kwargs) -> bytes:
    """``fluorescence_pixels`` as a dim 16-bit TIFF (12-bit camera range), as microscopes write them."""
    import tifffile

    out = io.BytesIO()
    tifffile.imwrite(out, fluorescence_pixels(**kwargs).astype(np.uint16) * 4, photometric="minisblack")
    return out.getvalue()
