"""The detector's class list (defined in ``inference.labels``, which the web process imports without torch).

Category ids are 1..6 in COCO files and 0..5 inside the model. Names are the contract between
training data, model bundles and the portal: map by name, never by index alone.
"""
from __future__ import annotations

from inference.labels import CLASS_NAMES, TARGET_CLASS, coco_categories

__all__ = ["CLASS_NAMES", "TARGET_CLASS", "coco_categories"]
