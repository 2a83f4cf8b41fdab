"""Cascade / Mask R-CNN modeling with detectron2's module and parameter names."""
from .build import build_model
from .meta_arch import GeneralizedRCNN, detector_postprocess

__all__ = ["build_model", "GeneralizedRCNN", "detector_postprocess"]
