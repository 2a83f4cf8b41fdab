"""ROIPooler: ROIAlign(V2) over FPN levels with detectron2's canonical level assignment."""
from __future__ import annotations

import math

import torch
from torch import nn
from torchvision.ops import roi_align

from ..structures import Boxes


def assign_boxes_to_levels(box_lists: list[Boxes], min_level: int, max_level: int, canonical_box_size: int,
                           canonical_level: int) -> torch.Tensor:
    """Level index (0 = ``min_level``) of each box: floor(canonical_level + log2(sqrt(area) / canonical_box_size))."""
    box_sizes = torch.sqrt(torch.cat([boxes.area() for boxes in box_lists]))
    level_assignments = torch.floor(canonical_level + torch.log2(box_sizes / canonical_box_size + 1e-8))
    level_assignments = torch.clamp(level_assignments, min=min_level, max=max_level)
    return level_assignments.to(torch.int64) - min_level


def convert_boxes_to_pooler_format(box_lists: list[Boxes]) -> torch.Tensor:
    """Tensor[K, 5] rows (batch index, x1, y1, x2, y2)."""
    boxes = torch.cat([b.tensor for b in box_lists], dim=0)
    sizes = torch.tensor([len(b) for b in box_lists], device=boxes.device)
    indices = torch.repeat_interleave(torch.arange(len(box_lists), dtype=boxes.dtype, device=boxes.device), sizes)
    return torch.cat([indices[:, None], boxes], dim=1)


class ROIPooler(nn.Module):
    """``pooler_type``: ROIAlignV2 (aligned=True) or ROIAlign (aligned=False); ``scales`` = 1 / stride per level."""

    def __init__(self, *, output_size: int, scales: list[float], sampling_ratio: int, pooler_type: str = "ROIAlignV2",
                 canonical_box_size: int = 224, canonical_level: int = 4):
        super().__init__()
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        self.output_size = tuple(output_size)
        if pooler_type == "ROIAlignV2":
            self.aligned = True
        elif pooler_type == "ROIAlign":
            self.aligned = False
        else:
            raise ValueError(f"pooler type {pooler_type!r} not supported (ROIAlignV2, ROIAlign)")
        self.scales = [float(s) for s in scales]
        self.sampling_ratio = int(sampling_ratio)
        min_level = -math.log2(scales[0])
        max_level = -math.log2(scales[-1])
        if not (math.isclose(min_level, int(min_level)) and math.isclose(max_level, int(max_level))):
            raise ValueError("feature map strides must be powers of 2")
        self.min_level = int(min_level)
        self.max_level = int(max_level)
        if len(scales) != self.max_level - self.min_level + 1:
            raise ValueError("pooler scales must be consecutive powers of 2")
        self.canonical_level = canonical_level
        self.canonical_box_size = canonical_box_size

    def _pool(self, x: torch.Tensor, rois: torch.Tensor, level: int) -> torch.Tensor:
        # box coordinates stay float32 (fp16 cannot hold pixel positions > 2048 exactly); under AMP the
        # features follow them up to float32
        if x.dtype != rois.dtype:
            x = x.to(rois.dtype)
        return roi_align(x, rois, self.output_size, self.scales[level], self.sampling_ratio, self.aligned)

    def forward(self, x: list[torch.Tensor], box_lists: list[Boxes]) -> torch.Tensor:
        """``x``: per level Tensor[N, C, Hi, Wi]; returns Tensor[K, C, out, out] in box order."""
        num_level_assignments = len(self.scales)
        if len(x) != num_level_assignments:
            raise ValueError(f"pooler got {len(x)} feature maps for {num_level_assignments} levels")
        pooler_fmt_boxes = convert_boxes_to_pooler_format(box_lists)
        if num_level_assignments == 1:
            return self._pool(x[0], pooler_fmt_boxes, 0)
        level_assignments = assign_boxes_to_levels(box_lists, self.min_level, self.max_level,
                                                   self.canonical_box_size, self.canonical_level)
        num_boxes = pooler_fmt_boxes.size(0)
        num_channels = x[0].shape[1]
        # every box gets exactly one level (assignments are clamped), so no zero fill is needed
        output = pooler_fmt_boxes.new_empty((num_boxes, num_channels) + self.output_size)
        for level in range(num_level_assignments):
            inds = torch.nonzero(level_assignments == level, as_tuple=True)[0]
            if inds.numel() == 0:
                continue
            output.index_put_((inds,), self._pool(x[level], pooler_fmt_boxes[inds], level))
        return output
