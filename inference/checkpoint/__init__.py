"""Load detectron2 checkpoints (.pth with/without "model", detectron2/Caffe2 .pkl, .safetensors) strictly
into a model, without ever unpickling an arbitrary object.

What a weights file may hold is data, never code: ``.safetensors`` is read by the ``safetensors``
package (no pickle at all); ``.pth``/``.pt`` only through ``torch.load(weights_only=True)`` (tensors,
dicts, lists, numbers, strings); detectron2 ``.pkl`` files through :class:`NumpyOnlyUnpickler`, which
resolves only the few numpy and builtin names that pickled numpy arrays need. Anything else raises
:class:`UnsafeCheckpointError` naming the file and the refused global, before any of it runs.
"""
from __future__ import annotations

import _codecs
import collections
import io
import os
import pickle
import re
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["CheckpointError", "UnsafeCheckpointError", "NumpyOnlyUnpickler", "read_checkpoint", "read_state_dict",
           "load_checkpoint", "load_state_dict_strict", "save_safetensors", "WEIGHTS_SUFFIXES"]

# the file types a weights file may have (the suffix decides how it is read)
WEIGHTS_SUFFIXES = (".safetensors", ".pth", ".pt", ".pkl")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not fit the model (message names the problem)."""


class UnsafeCheckpointError(CheckpointError, ValueError):
    """A checkpoint that holds more than data (pickled objects other than tensors and numpy arrays): it is
    refused before anything in it runs. ``path``: the file; ``reason``: what was refused."""

    def __init__(self, path: str, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"refused checkpoint {path}: {reason}")


class _Refused(pickle.UnpicklingError):
    """Raised inside :class:`NumpyOnlyUnpickler` for anything outside what a weights file may hold."""


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as pickles of bytes (protocol < 3) call it, limited to the latin-1 codec."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise _Refused(f"_codecs.encode with codec {encoding!r} is not allowed in a weights file")
    return _codecs.encode(text, encoding)


# numpy's own modules that pickled arrays name (``numpy._core`` since numpy 2, ``numpy.core`` before)
_NUMPY_CORE = getattr(np, "_core", None) or np.core


# (module, name) as a pickle names it -> the object it stands for. Nothing else is ever resolved, and
# nothing is imported by a name read from the file.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{(module, "_reconstruct"): _NUMPY_CORE.multiarray._reconstruct
       for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(module, "scalar"): _NUMPY_CORE.multiarray.scalar for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(module, "_frombuffer"): _NUMPY_CORE.numeric._frombuffer
       for module in ("numpy.core.numeric", "numpy._core.numeric")},
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _latin1_encode,
}


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, numbers, strings and numpy arrays (what detectron2's ``.pkl`` checkpoints
    hold) and refuses every other global, before calling it, with a ``pickle.UnpicklingError``."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _Refused(f"global {module}.{name} is not allowed in a weights file") from None

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused("persistent ids are not allowed in a weights file")


def _shape(t: Any) -> str:
    shape = tuple(getattr(t, "shape", ()))
    return "x".join(str(s) for s in shape) if shape else "scalar"


def _read_pkl(path: str) -> Any:
    with open(path, "rb") as f:
        data = f.read()
    try:
        return NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
    except _Refused as e:
        raise UnsafeCheckpointError(path, f"{e} (a .pkl checkpoint may hold only dicts of numpy arrays)") from None
    except Exception as e:  # truncated or not a pickle
        raise CheckpointError(f"cannot read checkpoint {path} (corrupt or truncated pickle): "
                              f"{type(e).__name__}: {e}") from None


def _read_torch(path: str) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" in str(e):
            found = re.search(r"WeightsUnpickler error: (.*?)(?:\. |\.?$)", str(e), re.MULTILINE)
            reason = found.group(1) if found else "not tensors and plain data"
            raise UnsafeCheckpointError(
                path, f"it holds pickled objects other than tensors ({reason[:300]}); save the state dict alone "
                "(torch.save({'model': state_dict})) or as .safetensors") from None
        raise CheckpointError(f"cannot read checkpoint {path} (corrupt, truncated or not a torch file): "
                              f"{type(e).__name__}: {e}") from None
    except Exception as e:
        raise CheckpointError(f"cannot read checkpoint {path} (corrupt, truncated or not a torch file): "
                              f"{type(e).__name__}: {e}") from None


def _read_safetensors(path: str) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"cannot read checkpoint {path} (corrupt or truncated safetensors file): "
                              f"{type(e).__name__}: {e}") from None


def read_checkpoint(path: str | os.PathLike) -> Any:
    """The content of a weights file, read without running anything in it (see the module docstring).

    The suffix decides the reader: ``.safetensors``, ``.pkl`` (numpy-only unpickler), anything else
    ``torch.load(weights_only=True)``. Raises :class:`UnsafeCheckpointError` for a file holding other
    objects, :class:`CheckpointError` for a missing, empty or corrupt one.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"checkpoint {path} is empty")
    if path.endswith(".safetensors"):
        return _read_safetensors(path)
    if path.endswith(".pkl"):
        return _read_pkl(path)
    return _read_torch(path)


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint file into a flat ``{name: tensor}``.

    Accepts ``.safetensors`` (flat names), ``.pth``/``.pt`` (``{"model": sd}`` or a bare state dict)
    and detectron2 ``.pkl`` files (``{"model": {name: ndarray}, "__author__": ...}``, or Caffe2
    ``{"blobs": {...}}``). Raises :class:`UnsafeCheckpointError` / :class:`CheckpointError` as
    :func:`read_checkpoint` does.
    """
    path = os.fspath(path)
    data = read_checkpoint(path)
    if not isinstance(data, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(data).__name__}, not a state dict")
    if "model" in data and isinstance(data["model"], dict):
        sd = data["model"]
    elif "blobs" in data and isinstance(data["blobs"], dict):
        sd = {k: v for k, v in data["blobs"].items() if not k.endswith("_momentum")}
    elif "state_dict" in data and isinstance(data["state_dict"], dict):
        sd = data["state_dict"]
    else:
        sd = data
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if k == "__author__" or not isinstance(k, str):
            continue
        if isinstance(v, np.ndarray):
            if v.dtype.hasobject:
                raise CheckpointError(f"checkpoint {path}: entry {k!r} is an array of Python objects, not numbers")
            v = torch.from_numpy(np.ascontiguousarray(v))
        elif isinstance(v, (int, float)) and k.endswith("num_batches_tracked"):
            v = torch.tensor(v)
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"checkpoint {path}: entry {k!r} is a {type(v).__name__}, not a tensor")
        out[k] = v
    if not out:
        raise CheckpointError(f"checkpoint {path} holds no tensors")
    return _strip_prefix(out, "module.")


def _strip_prefix(sd: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    if all(k.startswith(prefix) for k in sd):
        return {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def _class_count_problem(model_sd: dict, ckpt_sd: dict) -> str | None:
    for k, v in model_sd.items():
        if k.endswith("cls_score.weight") and k in ckpt_sd and ckpt_sd[k].shape != v.shape:
            found = ckpt_sd[k].shape[0] - 1
            expected = v.shape[0] - 1
            return (f"class count mismatch: the config has MODEL.ROI_HEADS.NUM_CLASSES = {expected} but the "
                    f"checkpoint was trained for {found} classes ({k}: checkpoint {_shape(ckpt_sd[k])}, "
                    f"model {_shape(v)})")
    for k, v in model_sd.items():
        if k.endswith("mask_head.predictor.weight") and k in ckpt_sd and ckpt_sd[k].shape != v.shape:
            return (f"class count mismatch: mask predictor has {v.shape[0]} outputs in the model but "
                    f"{ckpt_sd[k].shape[0]} in the checkpoint ({k})")
    return None


def load_state_dict_strict(model: nn.Module, sd: dict[str, torch.Tensor], strict: bool = True,
                           source: str = "checkpoint") -> dict[str, list[str]]:
    """Copy ``sd`` into ``model``; names every missing, unexpected and mis-shaped key.

    Strict (default): any problem raises :class:`CheckpointError`. Not strict: matching keys load and
    the problems are returned as {"missing": [...], "unexpected": [...], "mismatched": [...]}.
    ``num_batches_tracked`` differences (BatchNorm vs FrozenBN checkpoints) are ignored.
    """
    model_sd = model.state_dict()
    problem = _class_count_problem(model_sd, sd)
    if problem:
        raise CheckpointError(f"{source}: {problem}")
    missing = [f"{k} ({_shape(v)})" for k, v in model_sd.items() if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [f"{k} ({_shape(v)})" for k, v in sd.items() if k not in model_sd and not k.endswith("num_batches_tracked")]
    mismatched = [f"{k} (checkpoint {_shape(v)}, model {_shape(model_sd[k])})" for k, v in sd.items()
                  if k in model_sd and tuple(v.shape) != tuple(model_sd[k].shape)]
    if strict and (missing or unexpected or mismatched):
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): " + ", ".join(missing))
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): " + ", ".join(unexpected))
        if mismatched:
            parts.append(f"{len(mismatched)} shape mismatch(es): " + ", ".join(mismatched))
        raise CheckpointError(f"{source} does not fit the model: " + "; ".join(parts))
    bad = {m.split(" ")[0] for m in mismatched}
    loadable = {k: v for k, v in sd.items() if k in model_sd and k not in bad}
    for k, v in model_sd.items():  # FrozenBN/BN compatibility
        if k.endswith("num_batches_tracked") and k not in loadable:
            loadable[k] = v
    model.load_state_dict(loadable, strict=False)
    return {"missing": missing, "unexpected": unexpected, "mismatched": mismatched}


def load_checkpoint(model: nn.Module, path: str | os.PathLike, strict: bool = True) -> dict[str, list[str]]:
    """Read ``path`` and load it into ``model`` (see :func:`read_state_dict`, :func:`load_state_dict_strict`)."""
    sd = read_state_dict(path)
    return load_state_dict_strict(model, sd, strict=strict, source=f"checkpoint {os.fspath(path)}")


def save_safetensors(state: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str] | None = None
                     ) -> str:
    """Write a flat ``{name: tensor}`` as a ``.safetensors`` file (CPU copies; written beside and renamed
    into place). Returns the path."""
    from safetensors.torch import save_file

    path = os.fspath(path)
    if not path.endswith(".safetensors"):
        raise ValueError(f"a safetensors file must end in .safetensors, got {path}")
    tensors = {}
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"{k!r} is a {type(v).__name__}, not a tensor")
        tensors[k] = v.detach().to("cpu").contiguous().clone()  # own storage: safetensors refuses shared ones
    tmp = f"{path}.tmp.{os.getpid()}"
    save_file(tensors, tmp, metadata={"format": "pt", **(metadata or {})})
    os.replace(tmp, path)
    return path
