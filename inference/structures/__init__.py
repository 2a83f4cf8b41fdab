"""Per-image data structures, as in detectron2: Boxes, Instances, ImageList, BitMasks, mask helpers."""
from .boxes import Boxes, pairwise_iou
from .image_list import ImageList
from .instances import Instances
from .masks import (
    BitMasks,
    IndexedBitMasks,
    PolygonMasks,
    masks_to_rle,
    paste_masks_in_image,
    polygons_to_bitmask,
    rle_to_masks,
)

__all__ = [
    "Boxes",
    "pairwise_iou",
    "ImageList",
    "Instances",
    "BitMasks",
    "IndexedBitMasks",
    "PolygonMasks",
    "paste_masks_in_image",
    "polygons_to_bitmask",
    "masks_to_rle",
    "rle_to_masks",
]
