"""One pixel pipeline: any stored image -> the 8-bit RGB the model sees, and the one resize rule.

Torch-free and Django-free (numpy, Pillow, tifffile only): the portal's upload (display view), its
jobs, the CLI, the predictor, training data loading and evaluation all call this module, so the
same stored pixels give the same model input everywhere.

**Reading** (:func:`read_image`): a path, bytes or binary file object -> the stored samples as they
are (dtype kept: uint8, uint16, int32, float32...; layout H×W or H×W×C). TIFFs are read with
tifffile (one page: ``page``, default the first); other formats with Pillow.

**Layout** (:func:`to_model_rgb`): a single channel is repeated to RGB; gray + alpha keeps the gray;
RGBA/RGBX drops the alpha; planar (C, H, W) with C in 1/3/4 becomes H×W×C; bool is 0/255.

**8-bit rule** (:func:`intensity_window`, :func:`apply_window`): the samples are mapped linearly from
a window ``[0, high]`` to ``0..255`` (``round(v * 255 / high)``, clipped), all channels together:

- uint8 (and bool): ``high = 255``, the pixels pass through unchanged;
- any other type: ``high = 2**b - 1`` for the smallest camera bit depth ``b`` in 8, 10, 12, 14, 16
  that holds the image's 99.9th percentile ``p`` (over a deterministic subsample of at most 2**20
  samples); floats with ``p <= 1`` use ``high = 1``; above 16 bits ``high = p``.

Why this rule and not a per-image percentile stretch (what the display and the predictor each did
before, rounding differently): the model is trained on 8-bit brightfield fields whose absolute
brightness carries meaning (bright background, dark nuclei); a stretch changes contrast image by
image. The container-depth window is linear and keeps that meaning, and it is exact for the usual
conversions: the same field stored as 8-bit and as 16-bit ``v * 257`` (what ImageJ, tifffile and
most converters write) gives identical 8-bit pixels whenever ``p >= 64 * 257`` (any field that is
not almost black), and 8-bit data in a 16-bit container (``p <= 255``) passes through unchanged. A
12-bit camera's 0..4095 fills 0..255 instead of becoming 16x darker, and a few hot pixels cannot move
the window (they clip) because the depth comes from the 99.9th percentile, not the maximum.

**Resize** (:func:`shortest_edge_size`, :func:`resize_rgb`, :func:`resize_mask`): detectron2's
``ResizeShortestEdge`` output size (``int(x + 0.5)``), Pillow bilinear for images (antialiased when
shrinking), nearest for masks. Training augmentations and the predictor use these same functions.
"""
from __future__ import annotations

import io
import os
from typing import Any, BinaryIO

import numpy as np
from PIL import Image

CAMERA_BIT_DEPTHS = (8, 10, 12, 14, 16)
REFERENCE_PERCENTILE = 99.9
SUBSAMPLE_MAX = 2**20
_ROW_CHUNK_SAMPLES = 2**22  # float windowing works on row blocks of about this many samples
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


class PixelError(ValueError):
    """The image cannot be read or has a layout that is not gray, gray + alpha, RGB or RGBA."""


# --------------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------------
def read_image(source: str | os.PathLike | bytes | BinaryIO, page: int = 0) -> np.ndarray:
    """The stored samples of one image (one ``page`` of a multi-page TIFF), dtype and layout as stored.

    ``source``: a path, the file's bytes or a binary file object. Raises :class:`PixelError` when the
    file is missing, not an image, corrupt, or has no such page.
    """
    try:
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as handle:
                data = handle.read()
        elif isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
        else:
            data = source.read()
    except FileNotFoundError:
        raise PixelError(f"image not found: {os.fspath(source)}") from None  # type: ignore[arg-type]
    except OSError as exc:
        raise PixelError(f"cannot read image: {exc}") from None
    try:
        if data[:4] in _TIFF_MAGIC:
            return _read_tiff(data, page)
        if page != 0:
            raise PixelError(f"page {page} requested from a single-page image")
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return pil_to_array(im)
    except PixelError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow/tifffile raise many types on corrupt data
        raise PixelError(f"cannot read image: {type(exc).__name__}: {exc}") from None


def _read_tiff(data: bytes, page: int) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(io.BytesIO(data)) as tf:
        if not 0 <= page < len(tf.pages):
            raise PixelError(f"page {page} requested from a TIFF with {len(tf.pages)} page(s)")
        try:
            return np.asarray(tf.pages[page].asarray())
        except KeyError:  # a codec tifffile lacks here (e.g. LZW without imagecodecs): Pillow decodes it
            with Image.open(io.BytesIO(data)) as im:
                im.seek(page)
                im.load()
                return pil_to_array(im)


def pil_to_array(im: Image.Image) -> np.ndarray:
    """A Pillow image's samples: 16/32-bit and float modes keep their values, palette/CMYK/YCbCr
    become RGB, ``LA``/``PA`` keep their alpha (dropped by :func:`to_model_rgb`)."""
    mode = im.mode
    if mode in ("L", "RGB", "RGBA", "LA"):
        return np.asarray(im)
    if mode.startswith("I;16"):
        return np.array(im, dtype=np.uint16)
    if mode in ("I", "F"):
        return np.asarray(im)
    if mode == "1":
        return np.asarray(im.convert("L"))
    if mode == "PA":
        return np.asarray(im.convert("RGBA"))
    return np.asarray(im.convert("RGB"))


# --------------------------------------------------------------------------------------------------
# layout and the 8-bit rule
# --------------------------------------------------------------------------------------------------
def normalize_layout(array: np.ndarray) -> np.ndarray:
    """H×W (gray) or H×W×3 (RGB): squeeze a single channel, planar -> interleaved, drop alpha."""
    a = np.asarray(array)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[2] not in (1, 2, 3, 4):
        a = np.moveaxis(a, 0, -1)  # planar (C, H, W)
    if a.ndim == 3 and a.shape[2] in (1, 2):
        a = a[:, :, 0]  # gray, gray + alpha
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]  # RGBA / RGBX
    if a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3):
        return a
    raise PixelError(f"expected a gray (HxW) or RGB (HxWx3) image, got an array of shape {tuple(a.shape)}")


def intensity_window(array: np.ndarray) -> tuple[float, float]:
    """``(low, high)`` of the 8-bit rule (see the module docstring); ``low`` is always 0."""
    a = np.asarray(array)
    if a.dtype == np.uint8 or a.dtype == bool:
        return 0.0, 255.0
    flat = a.reshape(-1)
    sample = flat[:: max(1, flat.size // SUBSAMPLE_MAX)]
    if sample.dtype.kind == "f":
        sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return 0.0, 255.0
    p = float(np.percentile(sample, REFERENCE_PERCENTILE))
    if a.dtype.kind == "f" and p <= 1.0:
        return 0.0, 1.0
    for bits in CAMERA_BIT_DEPTHS:
        if p <= 2**bits - 1:
            return 0.0, float(2**bits - 1)
    return 0.0, p


def apply_window(array: np.ndarray, low: float, high: float) -> np.ndarray:
    """``clip(round((v - low) * 255 / (high - low)), 0, 255)`` as uint8 (NaN -> 0), same layout."""
    a = np.asarray(array)
    if a.dtype == np.uint8 and (low, high) == (0.0, 255.0):
        return a
    span = float(high - low) if high > low else 1.0
    if a.dtype.kind in "ub" and low == 0 and float(high).is_integer() and high <= 65535:
        # integer samples: an exact lookup table (v * 255 / high in float64, rounded once)
        top = int(high)
        lut = np.clip(np.rint(np.arange(top + 1, dtype=np.float64) * (255.0 / span)), 0, 255).astype(np.uint8)
        return lut[np.minimum(a, top)]
    out = np.empty(a.shape, np.uint8)
    rows = max(1, _ROW_CHUNK_SAMPLES // max(1, a[0].size if a.ndim > 1 else 1))
    for r in range(0, a.shape[0], rows):
        block = (a[r:r + rows].astype(np.float64) - float(low)) * (255.0 / span)
        np.nan_to_num(block, copy=False, nan=0.0, posinf=255.0, neginf=0.0)
        out[r:r + rows] = np.clip(np.rint(block), 0, 255)
    return out


def to_8bit(array: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """The 8-bit view (gray stays gray, H×W or H×W×3 uint8) and the ``(low, high)`` window used."""
    a = normalize_layout(array)
    low, high = intensity_window(a)
    return np.ascontiguousarray(apply_window(a, low, high)), (low, high)


def to_model_rgb(array: np.ndarray) -> np.ndarray:
    """The 8-bit RGB the model sees: uint8 [H, W, 3] by the one rule of this module."""
    a, _ = to_8bit(array)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    return np.ascontiguousarray(a)


def read_rgb(source: Any, page: int = 0) -> np.ndarray:
    """``to_model_rgb(read_image(source, page))``; a PIL image or an array is converted directly."""
    if isinstance(source, Image.Image):
        return to_model_rgb(pil_to_array(source))
    if isinstance(source, np.ndarray):
        return to_model_rgb(source)
    return to_model_rgb(read_image(source, page))


# --------------------------------------------------------------------------------------------------
# the one resize rule
# --------------------------------------------------------------------------------------------------
def shortest_edge_size(h: int, w: int, short_edge: int, max_size: int) -> tuple[int, int]:
    """detectron2's ``ResizeShortestEdge.get_output_shape``: (new_h, new_w), ``int(x + 0.5)`` rounding."""
    scale = short_edge * 1.0 / min(h, w)
    if h < w:
        newh, neww = short_edge * 1.0, scale * w
    else:
        newh, neww = scale * h, short_edge * 1.0
    if max(newh, neww) > max_size:
        scale = max_size * 1.0 / max(newh, neww)
        newh, neww = newh * scale, neww * scale
    return int(newh + 0.5), int(neww + 0.5)


def scaled_size(h: int, w: int, factor: float) -> tuple[int, int]:
    """(h, w) multiplied by ``factor`` with the same ``int(x + 0.5)`` rounding (at least 1 px)."""
    return max(1, int(h * factor + 0.5)), max(1, int(w * factor + 0.5))


def resize_rgb(image: np.ndarray, new_hw: tuple[int, int]) -> np.ndarray:
    """Pillow bilinear resize of a uint8 H×W(×C) image (detectron2's ``ResizeTransform``)."""
    if image.shape[:2] == tuple(new_hw):
        return image
    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((new_hw[1], new_hw[0]), Image.BILINEAR))


def resize_mask(mask: np.ndarray, new_hw: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of one bool H×W mask."""
    if mask.shape == tuple(new_hw):
        return mask
    pil = Image.fromarray(mask.astype(np.uint8))
    return np.asarray(pil.resize((new_hw[1], new_hw[0]), Image.NEAREST)) > 0
