"""Instance masks: BitMasks, PolygonMasks, detectron2's mask pasting and COCO RLE helpers."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

# elements of one paste chunk (N * h * w); bounds the temporary grid to a few tens of MB
_PASTE_CHUNK_ELEMS = 1 << 22


class BitMasks:
    """``tensor``: bool Tensor[N, H, W]."""

    def __init__(self, tensor: torch.Tensor | np.ndarray):
        if not isinstance(tensor, torch.Tensor):
            tensor = torch.as_tensor(np.asarray(tensor))
        tensor = tensor.to(torch.bool)
        if tensor.dim() != 3:
            raise ValueError(f"BitMasks needs a Tensor[N, H, W], got shape {tuple(tensor.shape)}")
        self.tensor = tensor
        self.image_size = tuple(tensor.shape[1:])

    def to(self, *args: Any, **kwargs: Any) -> BitMasks:
        return BitMasks(self.tensor.to(*args, **kwargs))

    @property
    def device(self) -> torch.device:
        return self.tensor.device

    def __getitem__(self, item) -> BitMasks:
        if isinstance(item, int):
            return BitMasks(self.tensor[item].unsqueeze(0))
        m = self.tensor[item]
        return BitMasks(m.reshape((-1,) + tuple(self.tensor.shape[1:])))

    def __len__(self) -> int:
        return self.tensor.shape[0]

    def nonempty(self) -> torch.Tensor:
        return self.tensor.flatten(1).any(dim=1)

    def get_bounding_boxes(self):
        from .boxes import Boxes

        boxes = torch.zeros(self.tensor.shape[0], 4, dtype=torch.float32)
        x_any = torch.any(self.tensor, dim=1)
        y_any = torch.any(self.tensor, dim=2)
        for idx in range(self.tensor.shape[0]):
            x = torch.where(x_any[idx, :])[0]
            y = torch.where(y_any[idx, :])[0]
            if len(x) and len(y):
                boxes[idx, :] = torch.as_tensor([x[0], y[0], x[-1] + 1, y[-1] + 1], dtype=torch.float32)
        return Boxes(boxes)

    def crop_and_resize(self, boxes: torch.Tensor, mask_size: int) -> torch.Tensor:
        """Crop each mask by its box and resize to ``mask_size`` squared (ROIAlign aligned, >= 0.5).

        Returns bool Tensor[N, mask_size, mask_size] (detectron2's ``BitMasks.crop_and_resize``).
        """
        assert len(boxes) == len(self), f"{len(boxes)} != {len(self)}"
        device = self.tensor.device
        batch_inds = torch.arange(len(boxes), device=device).to(dtype=boxes.dtype)[:, None]
        rois = torch.cat([batch_inds, boxes.to(device)], dim=1)
        bit_masks = self.tensor.to(dtype=torch.float32)
        out = roi_align(bit_masks[:, None], rois, (mask_size, mask_size), 1.0, 0, True).squeeze(1)
        return out >= 0.5

    @staticmethod
    def cat(masks_list: list[BitMasks]) -> BitMasks:
        return BitMasks(torch.cat([m.tensor for m in masks_list], dim=0))


class IndexedBitMasks:
    """Rows ``index`` of a BitMasks, without copying the masks: what each sampled proposal's matched gt
    mask is during training. ``crop_and_resize`` gives exactly ``BitMasks(masks.tensor[index])``'s,
    converting only the distinct gt masks (not one full-image copy per proposal) to float."""

    def __init__(self, masks: BitMasks, index: torch.Tensor):
        self.masks = masks
        self.index = index.to(device=masks.device, dtype=torch.int64).reshape(-1)

    def __len__(self) -> int:
        return self.index.numel()

    @property
    def device(self) -> torch.device:
        return self.masks.device

    def to(self, *args: Any, **kwargs: Any) -> IndexedBitMasks:
        masks = self.masks.to(*args, **kwargs)
        return IndexedBitMasks(masks, self.index.to(masks.device))

    def __getitem__(self, item) -> IndexedBitMasks:
        if isinstance(item, int):
            item = slice(item, item + 1 if item != -1 else None)
        return IndexedBitMasks(self.masks, self.index[item])

    def to_bitmasks(self) -> BitMasks:
        return BitMasks(self.masks.tensor[self.index])

    def crop_and_resize(self, boxes: torch.Tensor, mask_size: int) -> torch.Tensor:
        """As ``BitMasks.crop_and_resize`` of the selected rows."""
        assert len(boxes) == len(self), f"{len(boxes)} != {len(self)}"
        if len(self) == 0:
            return torch.zeros(0, mask_size, mask_size, dtype=torch.bool, device=boxes.device)
        used, batch_inds = torch.unique(self.index, return_inverse=True)
        rois = torch.cat([batch_inds.to(boxes.dtype)[:, None], boxes.to(self.device)], dim=1)
        bit_masks = self.masks.tensor[used].to(dtype=torch.float32)
        out = roi_align(bit_masks[:, None], rois, (mask_size, mask_size), 1.0, 0, True).squeeze(1)
        return out >= 0.5

    @staticmethod
    def cat(masks_list: list[IndexedBitMasks]) -> IndexedBitMasks | BitMasks:
        first = masks_list[0].masks
        if all(m.masks is first for m in masks_list):
            return IndexedBitMasks(first, torch.cat([m.index for m in masks_list]))
        return BitMasks.cat([m.to_bitmasks() for m in masks_list])


class PolygonMasks:
    """``polygons``: per instance a list of flat float arrays [x0, y0, x1, y1, ...] (pixels)."""

    def __init__(self, polygons: Sequence[Sequence[Any]]):
        self.polygons = [[np.asarray(p, dtype=np.float64).reshape(-1) for p in inst] for inst in polygons]

    def __len__(self) -> int:
        return len(self.polygons)

    def to(self, *args: Any, **kwargs: Any) -> PolygonMasks:
        return self

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def __getitem__(self, item) -> PolygonMasks:
        if isinstance(item, int):
            return PolygonMasks([self.polygons[item]])
        if isinstance(item, slice):
            return PolygonMasks(self.polygons[item])
        item = torch.as_tensor(item)
        if item.dtype == torch.bool:
            item = item.nonzero().squeeze(1)
        return PolygonMasks([self.polygons[i] for i in item.tolist()])

    def crop_and_resize(self, boxes: torch.Tensor, mask_size: int) -> torch.Tensor:
        """Rasterize each polygon inside its box at ``mask_size`` squared (detectron2's way)."""
        assert len(boxes) == len(self)
        device = boxes.device
        out = []
        for polys, box in zip(self.polygons, boxes.detach().cpu().numpy()):
            w, h = max(box[2] - box[0], 0.1), max(box[3] - box[1], 0.1)
            moved = []
            for p in polys:
                q = p.copy()
                q[0::2] = (q[0::2] - box[0]) * (mask_size / w)
                q[1::2] = (q[1::2] - box[1]) * (mask_size / h)
                moved.append(q)
            out.append(torch.from_numpy(polygons_to_bitmask(moved, mask_size, mask_size)))
        if not out:
            return torch.empty(0, mask_size, mask_size, dtype=torch.bool, device=device)
        return torch.stack(out).to(device)

    def to_bitmasks(self, height: int, width: int) -> BitMasks:
        if not self.polygons:
            return BitMasks(torch.zeros(0, height, width, dtype=torch.bool))
        return BitMasks(torch.stack([torch.from_numpy(polygons_to_bitmask(p, height, width)) for p in self.polygons]))

    @staticmethod
    def cat(masks_list: list[PolygonMasks]) -> PolygonMasks:
        return PolygonMasks([p for m in masks_list for p in m.polygons])


def polygons_to_bitmask(polygons: list[np.ndarray], height: int, width: int) -> np.ndarray:
    """Rasterize flat polygons into a bool HxW mask (pycocotools, as detectron2)."""
    from pycocotools import mask as mask_util

    polygons = [np.asarray(p, dtype=np.float64).reshape(-1) for p in polygons if len(p) >= 6]
    if not polygons:
        return np.zeros((height, width), dtype=bool)
    rles = mask_util.frPyObjects([p.tolist() for p in polygons], height, width)
    rle = mask_util.merge(rles)
    return mask_util.decode(rle).astype(bool)


def _paste_plan(boxes: torch.Tensor, img_h: int, img_w: int) -> tuple:
    """Each box's pixel window [floor(x0) - 1, ceil(x1) + 1) clipped to the image, and chunks of
    instances (smallest windows first) whose padded windows stay under ``_PASTE_CHUNK_ELEMS``."""
    x0_int = torch.clamp(boxes[:, 0].floor() - 1, min=0).to(torch.int64)
    y0_int = torch.clamp(boxes[:, 1].floor() - 1, min=0).to(torch.int64)
    x1_int = torch.clamp(boxes[:, 2].ceil() + 1, max=img_w).to(torch.int64)
    y1_int = torch.clamp(boxes[:, 3].ceil() + 1, max=img_h).to(torch.int64)
    win_w = (x1_int - x0_int).clamp(min=0)
    win_h = (y1_int - y0_int).clamp(min=0)
    order = torch.argsort(win_w * win_h).tolist()
    ww, wh = win_w.tolist(), win_h.tolist()
    chunks: list[list[int]] = []
    cur: list[int] = []
    mw = mh = 0
    for i in order:
        nw, nh = max(mw, ww[i]), max(mh, wh[i])
        if cur and (len(cur) + 1) * nw * nh > _PASTE_CHUNK_ELEMS:
            chunks.append(cur)
            cur, nw, nh = [], ww[i], wh[i]
        cur.append(i)
        mw, mh = nw, nh
    if cur:
        chunks.append(cur)
    return (x0_int, y0_int, x1_int, y1_int, win_w, win_h), chunks


def _paste_sample(masks: torch.Tensor, boxes: torch.Tensor, windows: tuple, chunk: list[int]):
    """Mask values over the windows of ``chunk``: (inds, px, py, vals, valid) or None for empty windows.

    ``vals``: float [k, ch, cw] (bilinear ``grid_sample``, ``align_corners=False``), ``valid``: bool
    [k, ch, cw] (inside each instance's own window), ``px``/``py``: int64 [k, cw]/[k, ch] image pixels.
    """
    x0_int, y0_int, x1_int, y1_int, win_w, win_h = windows
    device = boxes.device
    inds = torch.as_tensor(chunk, device=device, dtype=torch.int64)
    cw = int(win_w[inds].max())
    ch = int(win_h[inds].max())
    if cw == 0 or ch == 0:
        return None
    b = boxes[inds]
    x0, y0, x1, y1 = b[:, 0:1], b[:, 1:2], b[:, 2:3], b[:, 3:4]
    offs_x = torch.arange(cw, device=device, dtype=torch.int64)
    offs_y = torch.arange(ch, device=device, dtype=torch.int64)
    px = x0_int[inds, None] + offs_x[None]  # (k, cw) integer pixel columns
    py = y0_int[inds, None] + offs_y[None]
    img_x = (px.to(torch.float32) + 0.5 - x0) / (x1 - x0) * 2 - 1
    img_y = (py.to(torch.float32) + 0.5 - y0) / (y1 - y0) * 2 - 1
    k = len(chunk)
    gx = img_x[:, None, :].expand(k, ch, cw)
    gy = img_y[:, :, None].expand(k, ch, cw)
    grid = torch.stack([gx, gy], dim=3)
    m = masks[inds, None]
    vals = F.grid_sample(m, grid.to(m.dtype), align_corners=False)[:, 0]
    valid = (px < x1_int[inds, None])[:, None, :] & (py < y1_int[inds, None])[:, :, None]
    return inds, px, py, vals, valid


def paste_masks_in_image(
    masks: torch.Tensor, boxes: torch.Tensor, image_shape: tuple[int, int], threshold: float = 0.5
) -> torch.Tensor:
    """Paste Tensor[N, M, M] mask probabilities into an image of ``image_shape`` = (h, w).

    Same values as detectron2's ``paste_masks_in_image`` (bilinear ``grid_sample`` with
    ``align_corners=False`` over each box's pixel window [floor(x0) - 1, ceil(x1) + 1), then
    ``>= threshold``), but batched: all windows of a chunk are sampled by one ``grid_sample``.
    Returns bool Tensor[N, h, w] (uint8 0-255 probabilities when ``threshold < 0``).
    """
    assert masks.shape[-1] == masks.shape[-2], "only square mask predictions are supported"
    if not isinstance(boxes, torch.Tensor):
        boxes = boxes.tensor
    n = len(masks)
    img_h, img_w = int(image_shape[0]), int(image_shape[1])
    out_dtype = torch.bool if threshold >= 0 else torch.uint8
    device = boxes.device
    img_masks = torch.zeros(n, img_h, img_w, device=device, dtype=out_dtype)
    if n == 0:
        return img_masks
    masks = masks.to(device=device, dtype=torch.float32)
    boxes = boxes.to(torch.float32)
    windows, chunks = _paste_plan(boxes, img_h, img_w)
    for chunk in chunks:
        sampled = _paste_sample(masks, boxes, windows, chunk)
        if sampled is None:
            continue
        inds, px, py, vals, valid = sampled
        if threshold >= 0:
            sel = (vals >= threshold) & valid
            nz = sel.nonzero()
            r = inds[nz[:, 0]]
            img_masks[r, py[nz[:, 0], nz[:, 1]], px[nz[:, 0], nz[:, 2]]] = True
        else:
            v8 = (vals * 255).to(torch.uint8)
            nz = valid.expand(len(chunk), *vals.shape[1:]).nonzero()
            r = inds[nz[:, 0]]
            img_masks[r, py[nz[:, 0], nz[:, 1]], px[nz[:, 0], nz[:, 2]]] = v8[nz[:, 0], nz[:, 1], nz[:, 2]]
    return img_masks


def paste_masks_in_windows(
    masks: torch.Tensor, boxes: torch.Tensor, image_shape: tuple[int, int], threshold: float = 0.5
) -> tuple[np.ndarray, list[np.ndarray]]:
    """:func:`paste_masks_in_image` without the full-frame arrays: the same pixels, kept per instance.

    Returns ``windows`` int64 [N, 4] (y0, x0, y1, x1: each box's pixel window, clipped to the image)
    and ``crops``: N bool arrays [y1 - y0, x1 - x0], the pasted mask inside its window. Memory is
    the windows' size, not N x H x W.
    """
    assert masks.shape[-1] == masks.shape[-2], "only square mask predictions are supported"
    if not isinstance(boxes, torch.Tensor):
        boxes = boxes.tensor
    n = len(masks)
    img_h, img_w = int(image_shape[0]), int(image_shape[1])
    if n == 0:
        return np.zeros((0, 4), np.int64), []
    masks = masks.to(device=boxes.device, dtype=torch.float32)
    boxes = boxes.to(torch.float32)
    windows, chunks = _paste_plan(boxes, img_h, img_w)
    x0_int, y0_int, x1_int, y1_int, win_w, win_h = (t.cpu() for t in windows)
    out_windows = torch.stack([y0_int, x0_int, y0_int + win_h, x0_int + win_w], dim=1).numpy().astype(np.int64)
    crops: list[np.ndarray] = [np.zeros((int(win_h[i]), int(win_w[i])), bool) for i in range(n)]
    for chunk in chunks:
        sampled = _paste_sample(masks, boxes, windows, chunk)
        if sampled is None:
            continue
        inds, _px, _py, vals, valid = sampled
        sel = ((vals >= threshold) & valid).cpu().numpy()
        for j, i in enumerate(chunk):
            crops[i] = np.ascontiguousarray(sel[j, :int(win_h[i]), :int(win_w[i])])
    return out_windows, crops


def masks_to_rle(masks: np.ndarray | torch.Tensor) -> list[dict]:
    """bool [N, H, W] masks -> COCO RLE dicts with ``counts`` as str (JSON ready)."""
    from pycocotools import mask as mask_util

    if isinstance(masks, torch.Tensor):
        masks = masks.detach().cpu().numpy()
    masks = np.asarray(masks, dtype=np.uint8)
    if masks.shape[0] == 0:
        return []
    rles = mask_util.encode(np.asfortranarray(masks.transpose(1, 2, 0)))
    for r in rles:
        r["counts"] = r["counts"].decode("ascii")
    return rles


def rle_to_masks(rles: list[dict], height: int | None = None, width: int | None = None) -> np.ndarray:
    """COCO RLE dicts -> bool [N, H, W]."""
    from pycocotools import mask as mask_util

    if not rles:
        return np.zeros((0, height or 0, width or 0), dtype=bool)
    import warnings

    fixed = [{"size": r["size"], "counts": r["counts"].encode() if isinstance(r["counts"], str) else r["counts"]} for r in rles]
    with warnings.catch_warnings():  # pycocotools' numpy-2 copy= deprecation, not ours
        warnings.simplefilter("ignore", DeprecationWarning)
        return np.ascontiguousarray(mask_util.decode(fixed).transpose(2, 0, 1)).astype(bool)
