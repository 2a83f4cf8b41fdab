"""ROIPooler: ROIAlign(V2) over FPN levels with detectron2's canonical level assignment."""
from __future__ import annotations

import math

import torch
from torch import nn
from torchvision.ops import roi_align

from ..layers import ThreadedROIAlign, cpu_op_threads, executor, roi_align_channels_last
from ..structures import Boxes

# torchvision's CPU roi_align runs on one thread; with threaded ops on (``layers.set_threaded_ops``) a call
# with at least 2 x this many ROIs is split into chunks pooled concurrently (per-ROI independent, so the
# concatenation is exact)
MIN_ROIS_PER_THREAD = 32


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
        # an execution choice (``inference.engine.execution``): on CPU without autograd, pool channels-last
        # features with ``roi_align_channels_last`` (vectorised, all threads) instead of torchvision's kernel
        self.use_separable_roi_align = False

    def pools_channels_last(self, device: torch.device) -> bool:
        """Whether a call now (grad mode, device) pools channels-last features with
        ``roi_align_channels_last``; the features are then best passed in ``torch.channels_last``."""
        return self.use_separable_roi_align and device.type == "cpu" and not torch.is_grad_enabled() \
            and not torch.jit.is_scripting()

    def _pool(self, x: torch.Tensor, rois: torch.Tensor, level: int) -> torch.Tensor:
        # box coordinates stay float32 (fp16 cannot hold pixel positions > 2048 exactly); under AMP the
        # features follow them up to float32
        if x.dtype != rois.dtype:
            x = x.to(rois.dtype)
        if self.pools_channels_last(x.device):
            return roi_align_channels_last(x, rois, self.output_size, self.scales[level], self.sampling_ratio,
                                           self.aligned)
        workers = self._num_training_workers(x, rois.size(0))
        if workers > 1:
            return ThreadedROIAlign.apply(x, rois, self.output_size, self.scales[level], self.sampling_ratio,
                                          self.aligned, workers)
        return roi_align(x, rois, self.output_size, self.scales[level], self.sampling_ratio, self.aligned)

    @staticmethod
    def _num_training_workers(x: torch.Tensor, num_boxes: int) -> int:
        """Threads for one level's ROIs when the features need a gradient (training on CPU); else 1."""
        if not (x.requires_grad and torch.is_grad_enabled()):
            return 1
        return cpu_op_threads(num_boxes, min_items_per_thread=MIN_ROIS_PER_THREAD, device=x.device)

    @staticmethod
    def _num_workers(x: list[torch.Tensor], num_boxes: int) -> int:
        """Threads for the whole call's ROIs without autograd (inference on CPU); else 1."""
        if torch.is_grad_enabled():
            return 1
        return cpu_op_threads(num_boxes, min_items_per_thread=MIN_ROIS_PER_THREAD, device=x[0].device)

    def forward(self, x: list[torch.Tensor], box_lists: list[Boxes]) -> torch.Tensor:
        """``x``: per level Tensor[N, C, Hi, Wi]; returns Tensor[K, C, out, out] in box order.

        Features are best given in the layout the pooling reads (a backbone whose weights are channels_last
        gives channels-last features), else they are converted here: channels_last where
        ``pools_channels_last`` (the output is channels_last too), else contiguous NCHW (torchvision's
        roi_align). With threaded ops on (``layers.set_threaded_ops``), CPU calls with many ROIs are split
        into chunks pooled on ``torch.get_num_threads()`` threads at once (torchvision's CPU kernel is
        single-threaded).
        """
        num_level_assignments = len(self.scales)
        if len(x) != num_level_assignments:
            raise ValueError(f"pooler got {len(x)} feature maps for {num_level_assignments} levels")
        fmt = torch.channels_last if self.pools_channels_last(x[0].device) else torch.contiguous_format
        x = [f.contiguous(memory_format=fmt) for f in x]
        pooler_fmt_boxes = convert_boxes_to_pooler_format(box_lists)
        num_boxes = pooler_fmt_boxes.size(0)
        workers = 1 if fmt == torch.channels_last else self._num_workers(x, num_boxes)
        if num_level_assignments == 1:
            tasks = [(0, None, pooler_fmt_boxes)]
        else:
            level_assignments = assign_boxes_to_levels(box_lists, self.min_level, self.max_level,
                                                       self.canonical_box_size, self.canonical_level)
            # boxes grouped by level with one stable sort (no per-level scans)
            order = torch.argsort(level_assignments, stable=True)
            counts = torch.bincount(level_assignments, minlength=num_level_assignments).tolist()
            tasks = [(level, inds, pooler_fmt_boxes.index_select(0, inds))
                     for level, inds in enumerate(torch.split(order, counts)) if inds.numel()]
        if workers > 1:
            # cut the level-sorted ROIs into `workers` equal ranges; each range is pooled (level by level)
            # on its own thread, the calling thread taking the first
            chunk = -(-num_boxes // workers)
            groups: list[list] = [[] for _ in range(workers)]
            pos = 0
            for level, inds, rois in tasks:
                n = rois.size(0)
                start = 0
                while start < n:
                    g = (pos + start) // chunk
                    stop = min(n, (g + 1) * chunk - pos)
                    groups[g].append((level, None if inds is None else inds[start:stop], rois[start:stop]))
                    start = stop
                pos += n
            ex = executor(workers - 1)
            inference_mode = torch.is_inference_mode_enabled()  # thread-local: carried into the workers
            futures = [ex.submit(self._pool_group, x, g, inference_mode) for g in groups[1:] if g]
            pieces = self._pool_group(x, groups[0])
            for f in futures:
                pieces += f.result()
        else:
            pieces = self._pool_group(x, tasks)
        if len(pieces) == 1 and pieces[0][0] is None:
            return pieces[0][1]
        num_channels = x[0].shape[1]
        if num_level_assignments == 1:
            if not pieces:
                return torch.empty((0, num_channels) + self.output_size, dtype=pooler_fmt_boxes.dtype,
                                   device=pooler_fmt_boxes.device, memory_format=fmt)
            return torch.cat([r for _, r in pieces], dim=0)
        # every box gets exactly one level (assignments are clamped), so no zero fill is needed
        output = torch.empty((num_boxes, num_channels) + self.output_size, dtype=pooler_fmt_boxes.dtype,
                             device=pooler_fmt_boxes.device, memory_format=fmt)
        for inds, r in pieces:
            output.index_copy_(0, inds, r)
        return output

    def _pool_group(self, x: list[torch.Tensor], group: list, inference_mode: bool | None = None) -> list:
        if inference_mode is None:
            return [(inds, self._pool(x[level], rois, level)) for level, inds, rois in group]
        with torch.inference_mode(inference_mode), torch.no_grad():
            return [(inds, self._pool(x[level], rois, level)) for level, inds, rois in group]
