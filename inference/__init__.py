"""spermatid-portal detector: a detectron2-compatible (Cascade) Mask R-CNN on torch + torchvision.

Import is light: ``inference.Predictor`` loads torch and the model code on first use.
"""
from __future__ import annotations

from typing import Any

__all__ = ["Predictor", "Prediction", "load_config", "build_model"]


def __getattr__(name: str) -> Any:
    if name in ("Predictor", "Prediction"):
        from . import predictor

        return getattr(predictor, name)
    if name == "load_config":
        from .config import load_config

        return load_config
    if name == "build_model":
        from .modeling import build_model

        return build_model
    raise AttributeError(f"module 'inference' has no attribute {name!r}")
