"""Predictor: detectron2's DefaultPredictor behaviour behind an RGB-in, numpy-out API with measurements.

``Predictor(config, weights).predict(rgb_uint8_hxwx3, um_per_px=0.2)`` returns a :class:`Prediction`.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from .config import CfgNode, load_config
from .measure import measure
from .structures import masks_to_rle

if TYPE_CHECKING:
    from .engine.execution import ExecutionPolicy

MIN_IMAGE_SIDE = 16


# --------------------------------------------------------------------------------------------------
# input images
# --------------------------------------------------------------------------------------------------
def _window_to_uint8(arr: np.ndarray) -> np.ndarray:
    """Map a >8-bit (or float) image to uint8 by its 0.5-99.5 percentile window."""
    a = arr.astype(np.float64)
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return np.zeros(arr.shape, dtype=np.uint8)
    lo, hi = np.percentile(finite, [0.5, 99.5])
    if hi <= lo:
        hi = lo + 1.0
    a = np.nan_to_num(a, nan=lo, posinf=hi, neginf=lo)
    return np.clip((a - lo) * (255.0 / (hi - lo)) + 0.5, 0, 255).astype(np.uint8)


def load_image_rgb(image: Any) -> np.ndarray:
    """RGB uint8 [H, W, 3] from a path, PIL image or array.

    Grayscale becomes 3 channels, an alpha channel is dropped, 16-bit / float images are windowed
    to 8 bits by their 0.5-99.5 percentiles. Images with a side under 16 px raise ValueError.
    """
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        try:
            with Image.open(path) as im:
                im.load()
                image = _pil_to_array(im)
        except FileNotFoundError:
            raise ValueError(f"image not found: {path}") from None
        except OSError as e:
            raise ValueError(f"cannot read image {path}: {e}") from None
    elif isinstance(image, Image.Image):
        image = _pil_to_array(image)
    elif isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    arr = np.asarray(image)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        if arr.dtype != np.uint8:
            arr = _window_to_uint8(arr)
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] in (2, 3, 4):
        if arr.shape[2] == 2:  # gray + alpha
            arr = np.repeat(arr[:, :, :1], 3, axis=2)
        arr = arr[:, :, :3]
        if arr.dtype != np.uint8:
            arr = _window_to_uint8(arr)
    else:
        raise ValueError(f"expected an HxW or HxWx3 (RGB) image, got an array of shape {arr.shape}")
    h, w = arr.shape[:2]
    if min(h, w) < MIN_IMAGE_SIDE:
        raise ValueError(f"image is too small ({w}x{h} px); each side needs at least {MIN_IMAGE_SIDE} px")
    return np.ascontiguousarray(arr)


def _pil_to_array(im: Image.Image) -> np.ndarray:
    if im.mode in ("RGB", "L"):
        return np.asarray(im)
    if im.mode in ("RGBA", "RGBX", "CMYK", "YCbCr", "P", "PA", "LA", "1"):
        return np.asarray(im.convert("RGB"))
    if im.mode.startswith("I") or im.mode == "F":  # 16/32-bit grayscale
        return np.asarray(im).astype(np.float64) if im.mode == "F" else np.array(im)
    return np.asarray(im.convert("RGB"))


def resize_shortest_edge_shape(h: int, w: int, short_edge: int, max_size: int) -> tuple[int, int]:
    """detectron2's ResizeShortestEdge.get_output_shape: (new_h, new_w) with ``int(x + 0.5)`` rounding."""
    size = short_edge * 1.0
    scale = size / min(h, w)
    if h < w:
        newh, neww = size, scale * w
    else:
        newh, neww = scale * h, size
    if max(newh, neww) > max_size:
        scale = max_size * 1.0 / max(newh, neww)
        newh = newh * scale
        neww = neww * scale
    return int(newh + 0.5), int(neww + 0.5)


def resize_uint8(image: np.ndarray, new_h: int, new_w: int) -> np.ndarray:
    """PIL bilinear resize of a uint8 HxWxC array (what detectron2's ResizeTransform does)."""
    if image.shape[:2] == (new_h, new_w):
        return image
    return np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.BILINEAR))


# --------------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------------
@dataclass
class Prediction:
    """Instances found in one image, original-image pixels.

    boxes: float32 [N, 4] (x1, y1, x2, y2); scores: float32 [N]; class_ids: int64 [N] (0-based, model
    order); class_names: list[str] (N); masks: bool [N, H, W]; um_per_px: scale or None.
    Measurements (by attribute): area_px, area_um2, diameter_um (NaN without scale), centroid_px
    [N, 2] (x, y), centroid_um [N, 2] or None without scale.
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    class_names: list[str]
    masks: np.ndarray
    image_size: tuple[int, int]
    um_per_px: float | None = None
    _measures: dict | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def _m(self) -> dict:
        if self._measures is None:
            self._measures = measure(self.masks, self.um_per_px, boxes=self.boxes)
        return self._measures

    @property
    def area_px(self) -> np.ndarray:
        return self._m()["area_px"]

    @property
    def area_um2(self) -> np.ndarray:
        return self._m()["area_um2"]

    @property
    def diameter_um(self) -> np.ndarray:
        return self._m()["diameter_um"]

    @property
    def centroid_px(self) -> np.ndarray:
        return self._m()["centroid_px"]

    @property
    def centroid_um(self) -> np.ndarray | None:
        return self._m()["centroid_um"]

    def masks_rle(self) -> list[dict]:
        """COCO RLE per instance (``counts`` as str)."""
        return masks_to_rle(self.masks)

    to_rle = masks_rle

    def to_dict(self, include_masks: bool = True) -> dict:
        """JSON-ready dict of lists (masks as COCO RLE)."""
        def num(x):
            return None if x is None or (isinstance(x, float) and not np.isfinite(x)) else float(x)

        cen_um = self.centroid_um
        out = {
            "image_size": list(self.image_size),
            "um_per_px": self.um_per_px,
            "boxes": self.boxes.astype(float).tolist(),
            "scores": self.scores.astype(float).tolist(),
            "class_ids": self.class_ids.astype(int).tolist(),
            "class_names": list(self.class_names),
            "area_px": self.area_px.tolist(),
            "area_um2": [num(v) for v in self.area_um2],
            "diameter_um": [num(v) for v in self.diameter_um],
            "centroid_px": self.centroid_px.tolist(),
            "centroid_um": None if cen_um is None else cen_um.tolist(),
        }
        if include_masks:
            out["masks_rle"] = self.masks_rle()
        return out

    def to_coco_results(self, image_id: int, category_ids: Sequence[int] | dict | None = None) -> list[dict]:
        """COCO results entries; ``category_ids[class_id]`` maps classes (default class_id + 1)."""
        rles = self.masks_rle()
        out = []
        for i in range(len(self)):
            cid = int(self.class_ids[i])
            cat = cid + 1 if category_ids is None else int(category_ids[cid])
            x1, y1, x2, y2 = (float(v) for v in self.boxes[i])
            out.append({"image_id": image_id, "category_id": cat, "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "score": float(self.scores[i]), "segmentation": rles[i]})
        return out


# --------------------------------------------------------------------------------------------------
# predictor
# --------------------------------------------------------------------------------------------------
class Predictor:
    """Load a detectron2 config + checkpoint and predict on RGB images.

    config: YAML path or CfgNode; weights: checkpoint path; device: "cpu", "cuda", ...;
    class_names: names in model order (default ``class_{i}``); tile_size/tile_overlap: images with a
    side larger than ``tile_size`` are cut into overlapping tiles (each preprocessed like an image)
    and the instances merged (None: never tile); amp: autocast on CUDA; fold_bn: fold FrozenBN into
    the convolutions after loading (same results, faster); execution: how the model runs here
    (``inference.engine.execution.ExecutionPolicy``; default ``ExecutionPolicy.for_inference(device)``,
    same results up to rounding). Weights are read as data only (``inference.checkpoint``).
    """

    def __init__(self, config: str | os.PathLike | CfgNode, weights: str | os.PathLike | None, device: str = "cpu",
                 class_names: Sequence[str] | None = None, *, tile_size: int | None = None, tile_overlap: int = 128,
                 amp: bool = False, fold_bn: bool = True, execution: ExecutionPolicy | None = None,
                 strict: bool = True):
        from .checkpoint import load_checkpoint
        from .engine.execution import ExecutionPolicy, apply_execution_policy
        from .layers import fold_frozen_bn
        from .modeling import build_model

        self.cfg = load_config(config) if isinstance(config, (str, os.PathLike)) else config.clone()
        self.device = torch.device(device)
        model = build_model(self.cfg, device="cpu")
        if weights is not None:
            load_checkpoint(model, weights, strict=strict)
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        if fold_bn:
            fold_frozen_bn(model)
        self.model = model.to(self.device)
        self.execution = ExecutionPolicy.for_inference(self.device) if execution is None else execution
        apply_execution_policy(self.model, self.execution)
        self.amp = amp and self.device.type == "cuda"
        self.num_classes = int(self.cfg.MODEL.ROI_HEADS.NUM_CLASSES)
        if class_names is None:
            class_names = [f"class_{i}" for i in range(self.num_classes)]
        class_names = list(class_names)
        if len(class_names) != self.num_classes:
            raise ValueError(f"{len(class_names)} class names given for a model with {self.num_classes} classes")
        self.class_names = class_names
        self.input_format = self.cfg.INPUT.FORMAT
        if self.input_format not in ("RGB", "BGR"):
            raise ValueError(f"INPUT.FORMAT {self.input_format!r} not supported (RGB, BGR)")
        self.min_size_test = int(self.cfg.INPUT.MIN_SIZE_TEST)
        self.max_size_test = int(self.cfg.INPUT.MAX_SIZE_TEST)
        self.tile_size = tile_size
        self.tile_overlap = tile_overlap

    # model I/O -------------------------------------------------------------------------------
    def _prepare(self, rgb: np.ndarray) -> dict:
        img = rgb[:, :, ::-1] if self.input_format == "BGR" else rgb
        h, w = img.shape[:2]
        if self.min_size_test > 0:
            nh, nw = resize_shortest_edge_shape(h, w, self.min_size_test, self.max_size_test)
            img = resize_uint8(np.ascontiguousarray(img), nh, nw)
        tensor = torch.as_tensor(np.ascontiguousarray(img.astype("float32").transpose(2, 0, 1)))
        return {"image": tensor, "height": h, "width": w}

    def _infer(self, rgbs: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Run the model on RGB uint8 images; per image (boxes, scores, class_ids, masks) numpy."""
        inputs = [self._prepare(x) for x in rgbs]
        with torch.inference_mode(), torch.autocast("cuda", enabled=self.amp):
            outputs = self.model(inputs)
        results = []
        for out, rgb in zip(outputs, rgbs):
            inst = out["instances"]
            n = len(inst) if inst.get_fields() else 0
            if n:
                boxes = inst.pred_boxes.tensor.float().cpu().numpy().astype(np.float32)
                scores = inst.scores.float().cpu().numpy().astype(np.float32)
                classes = inst.pred_classes.cpu().numpy().astype(np.int64)
                masks = inst.pred_masks.cpu().numpy().astype(bool) if inst.has("pred_masks") else \
                    np.zeros((n,) + rgb.shape[:2], dtype=bool)
            else:
                boxes = np.zeros((0, 4), np.float32)
                scores = np.zeros(0, np.float32)
                classes = np.zeros(0, np.int64)
                masks = np.zeros((0,) + rgb.shape[:2], dtype=bool)
            results.append((boxes, scores, classes, masks))
        return results

    def _wrap(self, raw, image_size, um_per_px) -> Prediction:
        boxes, scores, classes, masks = raw
        if um_per_px is not None and not (float(um_per_px) > 0):
            raise ValueError(f"um_per_px must be a positive number, got {um_per_px!r}")
        return Prediction(boxes=boxes, scores=scores, class_ids=classes,
                          class_names=[self.class_names[int(c)] for c in classes], masks=masks,
                          image_size=(int(image_size[0]), int(image_size[1])),
                          um_per_px=None if um_per_px is None else float(um_per_px))

    # public API -------------------------------------------------------------------------------
    def predict(self, image: Any, um_per_px: float | None = None, *, tile_size: int | None = None,
                tile_overlap: int | None = None) -> Prediction:
        """Instances in one RGB image (uint8 HxWx3 array, PIL image or path); see :class:`Prediction`."""
        rgb = load_image_rgb(image)
        tile_size = self.tile_size if tile_size is None else tile_size
        tile_overlap = self.tile_overlap if tile_overlap is None else tile_overlap
        if tile_size and max(rgb.shape[:2]) > tile_size:
            from .tiling import predict_tiled

            raw = predict_tiled(self._infer, rgb, tile_size, tile_overlap)
        else:
            raw = self._infer([rgb])[0]
        return self._wrap(raw, rgb.shape[:2], um_per_px)

    def predict_batch(self, images: Sequence[Any], um_per_px: float | Sequence[float | None] | None = None,
                      batch_size: int = 4) -> list[Prediction]:
        """Predict several images (batched through the model ``batch_size`` at a time)."""
        images = list(images)
        scales = list(um_per_px) if isinstance(um_per_px, (list, tuple, np.ndarray)) else [um_per_px] * len(images)
        if len(scales) != len(images):
            raise ValueError("um_per_px needs one value per image")
        rgbs = [load_image_rgb(x) for x in images]
        out: list[Prediction | None] = [None] * len(rgbs)
        plain = [i for i, r in enumerate(rgbs) if not (self.tile_size and max(r.shape[:2]) > self.tile_size)]
        for start in range(0, len(plain), max(1, batch_size)):
            idx = plain[start:start + batch_size]
            for i, raw in zip(idx, self._infer([rgbs[i] for i in idx])):
                out[i] = self._wrap(raw, rgbs[i].shape[:2], scales[i])
        for i, r in enumerate(rgbs):
            if out[i] is None:
                out[i] = self.predict(r, scales[i])
        return out  # type: ignore[return-value]

    __call__ = predict
