"""Datasets: COCO import/export, splits, augmentations and the model-input mapper.

Import is light (numpy and pycocotools): the mapper's names load torch on first use, so the web tier,
which only splits and exports datasets, never imports torch.
"""
from __future__ import annotations

from typing import Any

from .classes import CLASS_NAMES, TARGET_CLASS, coco_categories
from .coco import (
                   CocoDataset,
                   DatasetError,
                   dataset_summary,
                   load_coco,
                   mask_to_rle,
                   save_coco,
                   segmentation_to_mask,
                   segmentation_to_rle,
                   to_coco_dict,
)
from .split import split_dataset, split_records

_MAPPER_NAMES = ("DatasetMapper", "build_augmentations", "build_train_loader", "filter_records", "read_image")

__all__ = ["DatasetMapper", "build_augmentations", "build_train_loader", "filter_records", "read_image",
           "CLASS_NAMES", "TARGET_CLASS", "CocoDataset", "DatasetError", "coco_categories", "dataset_summary",
           "load_coco", "mask_to_rle", "save_coco", "segmentation_to_mask", "segmentation_to_rle", "split_dataset",
           "split_records", "to_coco_dict"]


def __getattr__(name: str) -> Any:
    if name in _MAPPER_NAMES:
        from . import mapper

        return getattr(mapper, name)
    raise AttributeError(f"module 'inference.data' has no attribute {name!r}")
