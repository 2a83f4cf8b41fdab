"""The inference side of a job: the engine's predictor (loaded once per process, cached by sha256) and
the 8-bit RGB view of a stored image that the engine reads."""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from portal.mlmodels.bundles import BundleInvalid, file_sha256

_CACHE: OrderedDict[tuple[str, str], object] = OrderedDict()
_CACHE_LOCK = threading.Lock()
CACHE_SIZE = 2  # models kept per process


class ModelLoadError(Exception):
    """The model version's files cannot be loaded (missing, altered or corrupt)."""


class ImageReadError(Exception):
    """The stored image (display view or original) cannot be decoded."""


def predictor_for(*, model_version, device: str):
    """The engine's predictor for ``model_version``, built once per process and kept by weights sha256.

    The weights file is hashed before loading: a file that differs from the registered sha256 raises
    ``ModelLoadError`` (and is never cached), so a corrupt or swapped file cannot produce results.
    """
    key = (model_version.weights_sha256, device)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    predictor = _load_predictor(model_version=model_version, device=device)
    with _CACHE_LOCK:
        _CACHE[key] = predictor
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return predictor


def predictor_cache_clear() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()


def _load_predictor(*, model_version, device: str):
    from inference.bundle import load_bundle  # the engine is part of this repository

    root = Path(model_version.bundle_path)
    if not root.is_dir():
        raise ModelLoadError(f"The bundle directory of {model_version} is missing: {root}")
    try:
        bundle = load_bundle(root)
    except Exception as exc:  # BundleError and whatever a damaged file raises
        raise ModelLoadError(f"The bundle of {model_version} cannot be read: {exc}") from exc
    weights = Path(bundle.weights_path)
    if not weights.is_file():
        raise ModelLoadError(f"The weights file of {model_version} is missing: {weights.name}")
    actual = file_sha256(weights)
    if actual != model_version.weights_sha256:
        raise ModelLoadError(
            f"The weights file of {model_version} is corrupt or altered: sha256 {actual[:16]}… "
            f"does not match the registered {model_version.weights_sha256[:16]}…"
        )
    try:
        return bundle.predictor(device=device)
    except BundleInvalid:
        raise
    except Exception as exc:
        raise ModelLoadError(f"The model {model_version} cannot be loaded: {type(exc).__name__}: {exc}") from exc


def _to_rgb_uint8(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    elif array.ndim == 3 and array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    elif array.ndim == 3 and array.shape[-1] == 4:
        array = array[..., :3]
    elif array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)
        return _to_rgb_uint8(array)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ImageReadError(f"unexpected image shape {array.shape}")
    return np.ascontiguousarray(array, dtype=np.uint8)


def window_to_uint8(array: np.ndarray, low: float, high: float) -> np.ndarray:
    """The display window the upload stored: ``clip((v - low) / (high - low) * 255)``."""
    if array.dtype == np.uint8 and low == 0 and high == 255:
        return array
    span = float(high - low) or 1.0
    scaled = (array.astype(np.float32) - float(low)) / span * 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def image_rgb_uint8(image) -> np.ndarray:
    """The image's 8-bit RGB view (H×W×3 uint8): the display PNG, else the original with its window."""
    from PIL import Image as PILImage

    try:
        if image.display_file:
            with image.display_file.open("rb") as handle, PILImage.open(handle) as pil:
                return _to_rgb_uint8(np.asarray(pil.convert("RGB")))
        name = image.file.name.lower()
        with image.file.open("rb") as handle:
            if name.endswith((".tif", ".tiff")):
                import tifffile

                array = tifffile.imread(handle, key=0)
            else:
                with PILImage.open(handle) as pil:
                    pil.load()
                    array = np.asarray(pil if pil.mode in ("I;16", "I", "F", "L", "RGB") else pil.convert("RGB"))
    except ImageReadError:
        raise
    except Exception as exc:
        raise ImageReadError(f"image {image.pk} cannot be decoded: {type(exc).__name__}: {exc}") from exc
    return _to_rgb_uint8(window_to_uint8(array, image.display_window_low, image.display_window_high))
