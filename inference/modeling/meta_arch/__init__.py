"""Meta architectures (glue only)."""
from .rcnn import GeneralizedRCNN, detector_postprocess

__all__ = ["GeneralizedRCNN", "detector_postprocess"]
