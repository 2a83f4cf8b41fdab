"""Datasets: COCO import/export, splits, augmentations and the model-input mapper."""
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
from .mapper import DatasetMapper, build_augmentations, build_train_loader, filter_records, read_image
from .split import split_dataset, split_records

__all__ = ["DatasetMapper", "build_augmentations", "build_train_loader", "filter_records", "read_image",
           "CLASS_NAMES", "TARGET_CLASS", "CocoDataset", "DatasetError", "coco_categories", "dataset_summary",
           "load_coco", "mask_to_rle", "save_coco", "segmentation_to_mask", "segmentation_to_rle", "split_dataset",
           "split_records", "to_coco_dict"]
