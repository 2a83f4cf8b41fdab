"""Load detectron2 checkpoints (.pth with/without "model", detectron2/Caffe2 .pkl) strictly into a model."""
from __future__ import annotations

import os
import pickle
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["CheckpointError", "load_checkpoint", "read_state_dict", "load_state_dict_strict"]


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not fit the model (message names the problem)."""


def _shape(t: Any) -> str:
    shape = tuple(getattr(t, "shape", ()))
    return "x".join(str(s) for s in shape) if shape else "scalar"


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint file into a flat ``{name: tensor}``.

    Accepts ``.pth``/``.pt`` (``{"model": sd}`` or a bare state dict) and detectron2 ``.pkl`` files
    (``{"model": {name: ndarray}, "__author__": ...}``, or Caffe2 ``{"blobs": {...}}``).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"checkpoint {path} is empty")
    data: Any
    if path.endswith(".pkl"):
        try:
            with open(path, "rb") as f:
                data = pickle.load(f, encoding="latin1")
        except Exception as e:  # truncated or not a pickle
            raise CheckpointError(f"cannot read checkpoint {path} (corrupt or truncated pickle): {type(e).__name__}: {e}") from None
    else:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as first:
            try:  # detectron2 .pth files may hold other picklable objects (iteration, scheduler)
                data = torch.load(path, map_location="cpu", weights_only=False)
            except Exception:
                raise CheckpointError(
                    f"cannot read checkpoint {path} (corrupt, truncated or not a torch file): {type(first).__name__}: {first}"
                ) from None
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
