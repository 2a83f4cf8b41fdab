"""build_model(cfg): a GeneralizedRCNN from a detectron2 config (random init, not loaded)."""
from __future__ import annotations

import torch

from .meta_arch import GeneralizedRCNN


def build_model(cfg, device: str | torch.device | None = None) -> GeneralizedRCNN:
    """Build the model described by ``cfg`` (MODEL.*) and move it to ``device`` (default: cpu)."""
    model = GeneralizedRCNN.from_config(cfg)
    return model.to(torch.device(device or "cpu"))
