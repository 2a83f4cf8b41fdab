"""Training checkpoints: model, optimizer, LR scheduler, AMP scaler and iteration; resume after a crash.

Files in ``output_dir`` (detectron2's layout and keys): ``model_0000199.pth`` (iteration 199 done),
``model_final.pth``, and ``last_checkpoint`` naming the newest one. A checkpoint is written to a
temporary file and renamed into place, and ``last_checkpoint`` is updated after that, so a process
killed at any moment leaves the previous checkpoint usable. Everything saved is plain data (tensors, dicts,
lists, numbers, strings), so :meth:`TrainingCheckpointer.resume` reads it with ``weights_only=True``.
"""
from __future__ import annotations

import glob
import os
import re
from typing import Any

import torch
from torch import nn

from ..checkpoint import CheckpointError, read_checkpoint

LAST = "last_checkpoint"


def _atomic_torch_save(obj: Any, path: str) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _atomic_write_text(text: str, path: str) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def strip_norm_counters(state: dict) -> dict:
    """Drop BatchNorm ``num_batches_tracked`` (meaningless for FrozenBN at inference)."""
    return {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}


class TrainingCheckpointer:
    """Saves and restores everything needed to continue training where it stopped."""

    def __init__(self, output_dir: str, model: nn.Module, optimizer=None, scheduler=None, scaler=None,
                 max_to_keep: int = 2):
        self.output_dir, self.model, self.optimizer = output_dir, model, optimizer
        self.scheduler, self.scaler, self.max_to_keep = scheduler, scaler, max_to_keep
        os.makedirs(output_dir, exist_ok=True)

    # -- writing --------------------------------------------------------------------------------
    def save(self, name: str, iteration: int, **extra: Any) -> str:
        data = {"model": self.model.state_dict(), "iteration": int(iteration)}
        if self.optimizer is not None:
            data["optimizer"] = self.optimizer.state_dict()
        if self.scheduler is not None:
            data["scheduler"] = self.scheduler.state_dict()
        if self.scaler is not None:
            data["scaler"] = self.scaler.state_dict()
        data.update(extra)
        path = os.path.join(self.output_dir, f"{name}.pth")
        _atomic_torch_save(data, path)
        _atomic_write_text(os.path.basename(path), os.path.join(self.output_dir, LAST))
        self._prune()
        return path

    def _prune(self) -> None:
        if self.max_to_keep <= 0:
            return
        periodic = sorted(glob.glob(os.path.join(self.output_dir, "model_[0-9]*.pth")))
        for old in periodic[: -self.max_to_keep]:
            try:
                os.remove(old)
            except OSError:
                pass

    # -- reading --------------------------------------------------------------------------------
    def last_checkpoint(self) -> str | None:
        """Path of the newest complete checkpoint, or None."""
        marker = os.path.join(self.output_dir, LAST)
        if os.path.exists(marker):
            with open(marker, encoding="utf-8") as f:
                path = os.path.join(self.output_dir, f.read().strip())
            if os.path.exists(path):
                return path
        # marker missing (killed between rename and marker update): newest periodic file
        periodic = sorted(glob.glob(os.path.join(self.output_dir, "model_[0-9]*.pth")),
                          key=lambda p: int(re.findall(r"(\d+)", os.path.basename(p))[0]))
        return periodic[-1] if periodic else None

    def resume(self) -> int:
        """Restore the newest checkpoint; returns the iteration to start at (0 when there is none)."""
        path = self.last_checkpoint()
        if path is None:
            return 0
        data = read_checkpoint(path)
        if not isinstance(data, dict) or "model" not in data or "iteration" not in data:
            raise CheckpointError(f"{path} is not a training checkpoint (no model state and iteration)")
        self.model.load_state_dict(data["model"])
        if self.optimizer is not None and "optimizer" in data:
            self.optimizer.load_state_dict(data["optimizer"])
        if self.scheduler is not None and "scheduler" in data:
            self.scheduler.load_state_dict(data["scheduler"])
        if self.scaler is not None and "scaler" in data:
            self.scaler.load_state_dict(data["scaler"])
        return int(data["iteration"]) + 1


def load_weights_file(path: str) -> dict:
    """A state dict from a ``.pth`` (``{"model": ...}``, ``{"state_dict": ...}`` or bare), a ``.safetensors``
    or a detectron2 ``.pkl`` (numpy arrays), read safely (``inference.checkpoint.read_checkpoint``).
    Values become tensors; entries without a shape are left out."""
    obj = read_checkpoint(path)
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: no state dict found")
    return {k: torch.as_tensor(v) for k, v in obj.items() if hasattr(v, "shape")}


_TV_STAGE = re.compile(r"^layer(\d)\.(\d+)\.(.*)$")


def torchvision_to_detectron2_resnet(state: dict) -> dict:
    """Rename torchvision ResNet keys (``conv1``, ``bn1``, ``layer1.0.bn2``, ``downsample.1``) to
    detectron2's (``stem.conv1``, ``stem.conv1.norm``, ``res2.0.conv2.norm``, ``shortcut.norm``)."""
    out = {}
    for k, v in state.items():
        if k.startswith("fc."):
            continue
        if k.startswith("conv1."):
            out["stem." + k] = v
            continue
        if k.startswith("bn1."):
            out["stem.conv1.norm." + k[4:]] = v
            continue
        m = _TV_STAGE.match(k)
        if not m:
            out[k] = v
            continue
        stage, block, rest = int(m.group(1)) + 1, m.group(2), m.group(3)
        rest = re.sub(r"^bn(\d)\.", r"conv\1.norm.", rest)
        rest = rest.replace("downsample.0.", "shortcut.").replace("downsample.1.", "shortcut.norm.")
        out[f"res{stage}.{block}.{rest}"] = v
    return out


def load_pretrained_backbone(model: nn.Module, path: str, log=print) -> dict:
    """Load a user-provided backbone weights file into the model's ResNet (``backbone.bottom_up``).

    Accepts detectron2/our names with or without the ``backbone.bottom_up.`` prefix, and torchvision
    ResNet names. Keys whose shape differs are skipped and reported. Returns counts; raises
    ``ValueError`` when nothing matches (a wrong file should not pass silently).
    """
    state = load_weights_file(path)
    target = getattr(getattr(model, "backbone", model), "bottom_up", None) or getattr(model, "backbone", model)
    for prefix in ("module.", "backbone.bottom_up.", "backbone."):
        if any(k.startswith(prefix) for k in state):
            state = {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}
    if "conv1.weight" in state and "stem.conv1.weight" not in state:
        state = torchvision_to_detectron2_resnet(state)
    own = target.state_dict()
    loaded, skipped = {}, []
    for k, v in state.items():
        if k in own and tuple(own[k].shape) == tuple(v.shape):
            loaded[k] = v.to(own[k].dtype)
        elif k in own:
            skipped.append(f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}")
    if not loaded:
        raise ValueError(f"{path}: no backbone weight matches the model (e.g. {list(state)[:3]})")
    missing = [k for k in own if k not in loaded and not k.endswith("num_batches_tracked")]
    target.load_state_dict(loaded, strict=False)
    log(f"pretrained backbone {path}: loaded {len(loaded)} tensors, {len(missing)} left as initialised, "
        f"{len(skipped)} skipped for shape" + ("".join("\n  " + s for s in skipped[:10])))
    return {"loaded": len(loaded), "missing": missing, "skipped": skipped}
