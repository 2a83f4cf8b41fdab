"""ROIAlign for CPU: on channels-last features as weighted sums of feature rows (fast CPU inference,
``roi_align_channels_last``), and torchvision's kernel split by ROI over threads (``ThreadedROIAlign``).

torchvision's ``roi_align`` averages, for each output bin, bilinear samples on a regular grid. Both the
bilinear weights and the "outside the map" test split into a y part and an x part, so a bin's value is

    out[c, ph, pw] = sum over rows r and columns s of  A[ph, r] * B[pw, s] * F[c, r, s] / count

where ``A[ph, r]`` adds up the y weights that the bin's sample rows give map row ``r`` (``B`` the same
for x). Only the few rows and columns a bin's samples touch are non-zero. With the features laid out
as ``(N*H*W, C)`` (channels last), every bin is one weighted sum of C-long feature vectors, which
``embedding_bag`` computes vectorised and on all threads; torchvision's CPU kernel reads the samples
one channel at a time on one thread. The result equals torchvision's up to float rounding (the sums
are taken in another order); the sample positions are computed with the same float32 operations.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .threads import executor

# ROIs per embedding_bag call: bounds the index tensors (ROIs are sorted by how many feature vectors
# their bins read, so each chunk pads to its own largest ROI only)
CHUNK_ROIS = 256


def _axis_samples(start: torch.Tensor, bin_size: torch.Tensor, grid: torch.Tensor, size: int, pooled: int):
    """Sample rows along one axis, as torchvision's ``pre_calc`` computes them.

    start, bin_size: Tensor[R] float32 (R > 0); grid: Tensor[R] samples per bin. Returns low, high
    (Tensor[R, pooled, G] int64 map indices), w_low, w_high (their weights, 0 for samples outside the
    map or past the ROI's grid), first (Tensor[R, pooled]: the lowest row a bin reads) and extent
    (Tensor[R]: the most rows one of the ROI's bins spans).
    """
    max_grid = max(int(grid.max()), 1)
    gridf = grid.to(torch.float32)[:, None, None]
    step = torch.arange(max_grid, dtype=torch.float32, device=start.device)
    bins = torch.arange(pooled, dtype=torch.float32, device=start.device)
    # torchvision: roi_start + p * bin_size + (i + .5) * bin_size / grid, in float32, in this order
    y = (start[:, None, None] + bins[None, :, None] * bin_size[:, None, None]) + \
        ((step + 0.5)[None, None, :] * bin_size[:, None, None]) / gridf
    valid = (step[None, None, :] < gridf) & (y >= -1.0) & (y <= size)
    y = y.clamp(min=0.0)
    low = y.to(torch.int64)
    at_edge = low >= size - 1
    low = low.clamp(max=size - 1)
    high = torch.where(at_edge, low, low + 1)
    y = torch.where(at_edge, low.to(torch.float32), y)
    w_high = y - low.to(torch.float32)
    w_low = 1.0 - w_high
    w_high = torch.where(valid, w_high, 0.0)
    w_low = torch.where(valid, w_low, 0.0)
    none = torch.iinfo(torch.int64).max
    first = torch.where(valid, low, none).amin(dim=2)
    last = torch.where(valid, high, -1).amax(dim=2)
    first = torch.where(first == none, 0, first)
    extent = (last - first + 1).clamp(min=1).amax(dim=1)
    return low, high, w_low, w_high, first, extent


def _axis_weights(low, high, w_low, w_high, first, width: int) -> torch.Tensor:
    """Tensor[R, pooled, width]: the weight each bin gives rows first .. first + width - 1."""
    weights = torch.zeros(low.shape[0], low.shape[1], width + 1, dtype=w_low.dtype, device=low.device)
    # rows past the window can only carry zero weight (invalid samples): send them to a spare column
    weights.scatter_add_(2, (low - first[:, :, None]).clamp(0, width), w_low)
    weights.scatter_add_(2, (high - first[:, :, None]).clamp(0, width), w_high)
    return weights[:, :, :width]


def roi_align_channels_last(x: torch.Tensor, rois: torch.Tensor, output_size: tuple[int, int], spatial_scale: float,
                            sampling_ratio: int, aligned: bool) -> torch.Tensor:
    """torchvision ``roi_align(x, rois, output_size, spatial_scale, sampling_ratio, aligned)`` without
    autograd, computed from channels-last features (float rounding aside, the same values).

    x: Tensor[N, C, H, W] (best in ``torch.channels_last``, else it is converted); rois: Tensor[R, 5]
    (batch index, x1, y1, x2, y2). Returns Tensor[R, C, ph, pw] in channels_last memory format.
    """
    n, c, h, w = x.shape
    pooled_h, pooled_w = output_size
    num_rois = rois.shape[0]
    table = x.permute(0, 2, 3, 1).reshape(n * h * w, c)  # a view when x is channels_last
    out = x.new_empty((num_rois, pooled_h, pooled_w, c))
    if num_rois == 0:
        return out.permute(0, 3, 1, 2)
    rois = rois.to(torch.float32)
    offset = 0.5 if aligned else 0.0
    x1 = rois[:, 1] * spatial_scale - offset
    y1 = rois[:, 2] * spatial_scale - offset
    roi_w = rois[:, 3] * spatial_scale - offset - x1
    roi_h = rois[:, 4] * spatial_scale - offset - y1
    if not aligned:
        roi_w = roi_w.clamp(min=1.0)
        roi_h = roi_h.clamp(min=1.0)
    if sampling_ratio > 0:
        grid_h = torch.full((num_rois,), sampling_ratio, dtype=torch.int64, device=rois.device)
        grid_w = grid_h
    else:
        grid_h = torch.ceil(roi_h / pooled_h).to(torch.int64)
        grid_w = torch.ceil(roi_w / pooled_w).to(torch.int64)
    count = (grid_h * grid_w).clamp(min=1).to(torch.float32)
    ys = _axis_samples(y1, roi_h / pooled_h, grid_h, h, pooled_h)
    xs = _axis_samples(x1, roi_w / pooled_w, grid_w, w, pooled_w)
    image_offset = rois[:, 0].to(torch.int64) * (h * w)
    order = torch.argsort(ys[5] * xs[5])
    for chunk in order.split(CHUNK_ROIS):
        y_parts = [t.index_select(0, chunk) for t in ys[:5]]
        x_parts = [t.index_select(0, chunk) for t in xs[:5]]
        rows_k = int(ys[5].index_select(0, chunk).max())
        cols_k = int(xs[5].index_select(0, chunk).max())
        wy = _axis_weights(*y_parts, rows_k) / count.index_select(0, chunk)[:, None, None]
        wx = _axis_weights(*x_parts, cols_k)
        rows = (y_parts[4][:, :, None] + torch.arange(rows_k, device=rois.device)).clamp(max=h - 1)
        cols = (x_parts[4][:, :, None] + torch.arange(cols_k, device=rois.device)).clamp(max=w - 1)
        # bag (roi, ph, pw) reads rows x cols: index [roi, ph, pw, k, j], weight wy[roi, ph, k] * wx[roi, pw, j]
        index = (image_offset.index_select(0, chunk)[:, None, None, None, None] + rows[:, :, None, :, None] * w
                 + cols[:, None, :, None, :])
        weight = wy[:, :, None, :, None] * wx[:, None, :, None, :]
        bags = F.embedding_bag(index.reshape(-1, rows_k * cols_k), table, mode="sum",
                               per_sample_weights=weight.reshape(-1, rows_k * cols_k).to(table.dtype))
        out.index_copy_(0, chunk, bags.view(-1, pooled_h, pooled_w, c))
    return out.permute(0, 3, 1, 2)


def _roi_align_chunk(x: torch.Tensor, rois: torch.Tensor, output_size: tuple[int, int], spatial_scale: float,
                     sampling_ratio: int, aligned: bool) -> torch.Tensor:
    with torch.no_grad():
        return torch.ops.torchvision.roi_align(x, rois, spatial_scale, output_size[0], output_size[1], sampling_ratio,
                                               aligned)


def _roi_align_backward_chunk(grad: torch.Tensor, rois: torch.Tensor, output_size: tuple[int, int],
                              spatial_scale: float, sampling_ratio: int, aligned: bool,
                              input_shape: torch.Size) -> torch.Tensor:
    n, c, h, w = input_shape
    with torch.no_grad():
        return torch.ops.torchvision._roi_align_backward(grad.contiguous(), rois, spatial_scale, output_size[0],
                                                         output_size[1], n, c, h, w, sampling_ratio, aligned)


class ThreadedROIAlign(torch.autograd.Function):
    """torchvision's roi_align with its forward and backward split by ROI over ``workers`` threads (CPU
    training: torchvision's CPU kernels, backward included, run on one thread). Each ROI's output and
    gradient are computed as torchvision computes them; the chunks' input gradients are summed."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, rois: torch.Tensor, output_size: tuple[int, int], spatial_scale: float,
                sampling_ratio: int, aligned: bool, workers: int) -> torch.Tensor:
        ctx.save_for_backward(rois)
        ctx.settings = (output_size, spatial_scale, sampling_ratio, aligned, workers, x.shape)
        chunks = rois.tensor_split(workers)
        futures = [executor(workers - 1).submit(_roi_align_chunk, x, r, output_size, spatial_scale, sampling_ratio,
                                                 aligned) for r in chunks[1:]]
        first = _roi_align_chunk(x, chunks[0], output_size, spatial_scale, sampling_ratio, aligned)
        return torch.cat([first] + [f.result() for f in futures], dim=0)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (rois,) = ctx.saved_tensors
        output_size, spatial_scale, sampling_ratio, aligned, workers, shape = ctx.settings
        sizes = [r.size(0) for r in rois.tensor_split(workers)]
        pairs = list(zip(grad_output.split(sizes), rois.split(sizes)))
        args = (output_size, spatial_scale, sampling_ratio, aligned, shape)
        futures = [executor(workers - 1).submit(_roi_align_backward_chunk, g, r, *args) for g, r in pairs[1:]]
        grad_input = _roi_align_backward_chunk(*pairs[0], *args)
        for f in futures:
            grad_input += f.result()
        return grad_input, None, None, None, None, None, None
