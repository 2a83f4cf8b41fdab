"""The inference side of a job: the engine's predictor (loaded once per process, cached by sha256) and
the 8-bit RGB the engine reads from a stored image, both fetched through the media storage API into the
host's bounded cache (``portal.core.media``)."""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from portal.core.media import MediaIntegrityError, bundle_cached_dir, media_cached_open
from portal.mlmodels.bundles import BundleInvalid, file_sha256

_CACHE: OrderedDict[tuple[str, str], object] = OrderedDict()
_CACHE_LOCK = threading.Lock()
CACHE_SIZE = 2  # models kept per process


class ModelLoadError(Exception):
    """The model version's files cannot be loaded (missing, altered or corrupt)."""


class ModelRefused(ModelLoadError):
    """The model's weights file holds more than tensors (objects that could run code when loaded): it is
    refused before anything in it runs, for good (a retry cannot help)."""


class ImageReadError(Exception):
    """The stored image (display view or original) cannot be decoded."""


def predictor_for(*, model_version, device: str):
    """The engine's predictor for ``model_version``, built once per process and kept by model version and weights sha256.

    The weights file is hashed before loading: a file that differs from the registered sha256 raises
    ``ModelLoadError`` (and is never cached), so a corrupt or swapped file cannot produce results.
    """
    key = (model_version.pk, model_version.weights_sha256, device)  # same weights, other config: other key
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
    from inference.checkpoint import UnsafeCheckpointError

    root = model_bundle_local_dir(model_version)
    try:
        bundle = load_bundle(root)
    except Exception as exc:  # BundleError and whatever a damaged file raises
        raise ModelLoadError(f"The bundle of {model_version} cannot be read: {exc}") from exc
    weights = Path(bundle.weights_path)
    _weights_verify(model_version, weights)
    try:
        return bundle.predictor(device=device)
    except BundleInvalid:
        raise
    except UnsafeCheckpointError as exc:
        raise ModelRefused(
            f"The model {model_version} is refused: its weights file {weights.name} holds objects other than "
            f"tensors ({exc.reason}); nothing in it was run.") from exc
    except Exception as exc:
        raise ModelLoadError(f"The model {model_version} cannot be loaded: {type(exc).__name__}: {exc}") from exc


def _weights_verify(model_version, weights: Path) -> None:
    if not weights.is_file():
        raise ModelLoadError(f"The weights file of {model_version} is missing: {weights.name}")
    actual = file_sha256(weights)
    if actual != model_version.weights_sha256:
        raise ModelLoadError(
            f"The weights file of {model_version} is corrupt or altered: sha256 {actual[:16]}… "
            f"does not match the registered {model_version.weights_sha256[:16]}…"
        )


def model_bundle_local_dir(model_version) -> Path:
    """A local directory holding the bundle of ``model_version``, for the engine's loader.

    A bundle in media storage (``bundle_path`` is a storage folder such as ``models/tiny-1-…``) is fetched
    once per host into the media cache (``portal.core.media.bundle_cached_dir``), its weights checked
    against the registered sha256 before the copy is kept. A bundle registered by an absolute directory
    outside media storage (an operator's own path) is read where it is."""
    from inference.bundle import load_bundle

    if Path(model_version.bundle_path).is_absolute():
        root = Path(model_version.bundle_path)
        if not root.is_dir():
            raise ModelLoadError(f"The bundle directory of {model_version} is missing: {root}")
        return root

    def verify(directory: Path) -> None:
        try:
            bundle = load_bundle(directory)
        except Exception as exc:
            raise ModelLoadError(f"The bundle of {model_version} cannot be read: {exc}") from exc
        _weights_verify(model_version, Path(bundle.weights_path))

    try:
        return bundle_cached_dir(prefix=model_version.bundle_path, weights_sha256=model_version.weights_sha256,
                                 verify=verify)
    except (FileNotFoundError, OSError) as exc:
        raise ModelLoadError(f"The bundle of {model_version} cannot be fetched from storage: {exc}") from exc


def image_rgb_uint8(image) -> np.ndarray:
    """The 8-bit RGB the model sees (H×W×3 uint8): the stored original through the one pixel rule of
    ``inference.pixels`` (the rule the display view and training follow too)."""
    from inference.pixels import PixelError, read_image, to_model_rgb

    try:
        with media_cached_open(name=image.file.name, sha256=image.stored_sha256) as handle:
            return to_model_rgb(read_image(handle))
    except MediaIntegrityError as exc:
        raise ImageReadError(f"image {image.pk} is corrupt in storage: {exc}") from exc
    except PixelError as exc:
        raise ImageReadError(f"image {image.pk} cannot be decoded: {exc}") from exc
    except OSError as exc:
        raise ImageReadError(f"image {image.pk} cannot be read: {type(exc).__name__}: {exc}") from exc
