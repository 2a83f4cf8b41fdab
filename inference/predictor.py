"""Predictor: detectron2's DefaultPredictor behind an RGB-in, numpy-out API, at the physical scale.

``Predictor(config, weights).predict(rgb_uint8_hxwx3, um_per_px=0.2)`` returns a :class:`Prediction`.
A model whose config states its pixel size (``INPUT.UM_PER_PX``) sees every image of known pixel size
at that scale, tiled when large; results are in the original image's pixels either way.
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
from .pixels import read_rgb, resize_rgb, scaled_size, shortest_edge_size
from .structures.cropped_masks import CroppedMasks
from .tiling import TileInstances, merge_tiles, tile_windows

if TYPE_CHECKING:
    from .engine.execution import ExecutionPolicy

MIN_IMAGE_SIDE = 16
# Tiles overlap by at least this many µm: more than the largest round cell class (spermatocytes,
# 11-17 µm; ../shared/spec/labels.md), so every such cell lies whole inside some tile and is reported
# once. (A spermatozoon's 45-55 µm tail can be longer; its cut parts are united by mask overlap.)
TILE_OVERLAP_UM = 20.0
# An image whose pixel size lies outside the model's trained range (INPUT.UM_PER_PX_RANGE) by more
# than this factor gets a warning (still resampled to the model's scale); see scale_plan. Measured
# (benchmarks/bench_robustness.py, demo model trained at 0.188-0.299 µm/px at its input): fields
# 1.3-1.9x coarser (0.4-0.56 µm/px) keep round-spermatid AP50 0.98 (native 0.99), 1.3-1.9x finer
# (0.1-0.14) 1.00; beyond a factor 2 nothing was measured, and upsampling invents no detail.
SCALE_TOLERANCE = 2.0


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX): elsewhere bf16 is emulated, slower."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = {w for line in f if line.startswith("flags") for w in line.split()}
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & flags)


class Bf16Backbone(torch.nn.Module):
    """The backbone (ResNet + FPN: most of the CPU time) under CPU bf16 autocast, its features handed
    on in float32, so proposals, box regression, NMS and mask pasting stay in float32."""

    def __init__(self, backbone: torch.nn.Module):
        super().__init__()
        self.body = backbone
        self.size_divisibility = getattr(backbone, "size_divisibility", 0)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            features = self.body(x)
        return {k: v.float() for k, v in features.items()}


def model_scale(cfg: CfgNode) -> tuple[float | None, tuple[float, float] | None]:
    """(``INPUT.UM_PER_PX``, ``INPUT.UM_PER_PX_RANGE`` as (min, max)) of a config; None when absent/0."""
    um = cfg.INPUT.get("UM_PER_PX") or None
    rng = cfg.INPUT.get("UM_PER_PX_RANGE") or None
    if um is not None and not float(um) > 0:
        raise ValueError(f"INPUT.UM_PER_PX must be a positive number (or 0: unknown), got {um!r}")
    if rng is not None:
        if len(rng) != 2 or not 0 < float(rng[0]) <= float(rng[1]):
            raise ValueError(f"INPUT.UM_PER_PX_RANGE must be [min, max] with 0 < min <= max, got {rng!r}")
        rng = (float(rng[0]), float(rng[1]))
    return (None if um is None else float(um)), (rng if um is not None else None)


# --------------------------------------------------------------------------------------------------
# input images
# --------------------------------------------------------------------------------------------------
def load_image_rgb(image: Any) -> np.ndarray:
    """RGB uint8 [H, W, 3] from a path, file object, PIL image, array or tensor, by the one pixel rule
    of :mod:`inference.pixels` (gray -> 3 channels, alpha dropped, >8-bit windowed by the container's
    bit depth). Unreadable images and images with a side under 16 px raise ValueError."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    arr = read_rgb(image)
    h, w = arr.shape[:2]
    if min(h, w) < MIN_IMAGE_SIDE:
        raise ValueError(f"image is too small ({w}x{h} px); each side needs at least {MIN_IMAGE_SIDE} px")
    return arr


# --------------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------------
@dataclass
class Prediction:
    """Instances found in one image, original-image pixels.

    boxes: float32 [N, 4] (x1, y1, x2, y2); scores: float32 [N]; class_ids: int64 [N] (0-based, model
    order); class_names: list[str] (N); instance_masks: the masks as window crops
    (:class:`CroppedMasks`; ``masks`` gives them as bool [N, H, W], which costs N x H x W bytes);
    image_size: (H, W); um_per_px: the image's pixel size or None.
    Scale (see :class:`ScalePlan`): scale_status ``physical``, ``out_of_range``, ``unknown`` or
    ``model_unscaled``; scale_warning: words for the user ("" when physical); model_um_per_px: the pixel
    size the model saw the image at (None: the model's fixed short-edge resize); tiles: model inputs run.
    Measurements (by attribute): area_px, area_um2, diameter_um (NaN without scale), centroid_px
    [N, 2] (x, y), centroid_um [N, 2] or None without scale.
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    class_names: list[str]
    instance_masks: CroppedMasks
    image_size: tuple[int, int]
    um_per_px: float | None = None
    scale_status: str = "unknown"
    scale_warning: str = ""
    model_um_per_px: float | None = None
    tiles: int = 1
    _measures: dict | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @property
    def masks(self) -> np.ndarray:
        """bool [N, H, W] full-frame masks (for small images; large ones: ``instance_masks``/``masks_rle``)."""
        return self.instance_masks.dense()

    @property
    def scale_known(self) -> bool:
        """Whether the image's pixel size was given (µm measurements exist)."""
        return self.um_per_px is not None

    def _m(self) -> dict:
        if self._measures is None:
            self._measures = measure(self.instance_masks, self.um_per_px, boxes=self.boxes)
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
        """COCO RLE per instance (``counts`` as str), computed from the crops."""
        return self.instance_masks.to_rle()

    to_rle = masks_rle

    def to_dict(self, include_masks: bool = True) -> dict:
        """JSON-ready dict of lists (masks as COCO RLE)."""
        def num(x):
            return None if x is None or (isinstance(x, float) and not np.isfinite(x)) else float(x)

        cen_um = self.centroid_um
        out = {
            "image_size": list(self.image_size),
            "um_per_px": self.um_per_px,
            "scale_status": self.scale_status,
            "scale_warning": self.scale_warning,
            "model_um_per_px": self.model_um_per_px,
            "tiles": self.tiles,
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
# physical scale
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScalePlan:
    """How an image reaches the model.

    factor: model pixels per image pixel (None: the model's own fixed short-edge resize, detectron2's
    behaviour); model_um_per_px: the model's pixel size (``INPUT.UM_PER_PX``) when ``factor`` is set;
    status: ``physical`` (resampled to the model's pixel size, the image's pixel size within the
    trained range widened by ``SCALE_TOLERANCE``), ``out_of_range`` (resampled, but outside it),
    ``unknown`` (the image's pixel size was not given), ``model_unscaled`` (the model's config has no
    ``INPUT.UM_PER_PX``); warning: what to tell the user ("" for ``physical``).
    """

    factor: float | None
    model_um_per_px: float | None
    status: str
    warning: str = ""


def scale_plan(um_per_px: float | None, model_um_per_px: float | None,
               trained_range: tuple[float, float] | None, tolerance: float = SCALE_TOLERANCE) -> ScalePlan:
    """The :class:`ScalePlan` for an image of pixel size ``um_per_px`` and a model trained at
    ``model_um_per_px`` on pixel sizes ``trained_range`` (µm/px at the model's input)."""
    if um_per_px is not None and not (np.isfinite(float(um_per_px)) and float(um_per_px) > 0):
        raise ValueError(f"um_per_px must be a positive number, got {um_per_px!r}")
    if um_per_px is None:
        return ScalePlan(None, None, "unknown",
                         "The image's pixel size (µm/px) is unknown: it was analysed at the model's fixed "
                         "image size, so cells may not appear at the size the model learned, and no µm "
                         "measurements are given.")
    if not model_um_per_px:
        return ScalePlan(None, None, "model_unscaled",
                         "The model does not state the pixel size it was trained at (INPUT.UM_PER_PX): the "
                         "image was analysed at the model's fixed image size, whatever its µm/px.")
    um = float(um_per_px)
    lo, hi = trained_range if trained_range else (model_um_per_px, model_um_per_px)
    factor = um / float(model_um_per_px)
    if um > hi * tolerance or um < lo / tolerance:
        return ScalePlan(factor, float(model_um_per_px), "out_of_range",
                         f"The image's pixel size ({um:.3g} µm/px) is outside the range the model was trained "
                         f"on ({lo:.3g}–{hi:.3g} µm/px) by more than a factor {tolerance:g}: the image was "
                         "resampled to the model's scale, but the results may be unreliable.")
    return ScalePlan(factor, float(model_um_per_px), "physical")


@dataclass
class _Piece:
    """One model input: ``image`` RGB uint8 at the network's size; network px -> image px is
    ``x * scale + offset``; ``window`` (y0, x0, y1, x1) its extent in image px (None: whole image)."""

    image: np.ndarray
    scale: tuple[float, float]
    offset: tuple[float, float] = (0.0, 0.0)
    window: tuple[float, float, float, float] | None = None
    margin: float = 2.0


# --------------------------------------------------------------------------------------------------
# predictor
# --------------------------------------------------------------------------------------------------
class Predictor:
    """Load a detectron2 config + checkpoint and predict on RGB images.

    config: YAML path or CfgNode; weights: checkpoint path; device: "cpu", "cuda", ...;
    class_names: names in model order (default ``class_{i}``).

    Scale: when the config states the model's pixel size (``INPUT.UM_PER_PX``) and ``predict`` gets
    the image's, the image is resampled so it reaches the model at the model's pixel size (no
    short-edge resize), and cut into overlapping square tiles of ``tile_side`` px (sqrt(MIN_SIZE_TEST x
    MAX_SIZE_TEST), 32-aligned) whenever the resampled image is larger than the model's input (more
    than MIN_SIZE_TEST x MAX_SIZE_TEST pixels, or a side over MAX_SIZE_TEST: the most the model's own
    resize would ever feed it); tiles overlap by ``tile_overlap_um`` (default ``TILE_OVERLAP_UM``,
    more than the largest cell). Results are always in the original image's pixels. ``physical_scale=False`` keeps
    detectron2's fixed resize whatever the image's pixel size.

    Without a scale (either side unknown), detectron2's behaviour: the short edge is resized to
    MIN_SIZE_TEST; tile_size/tile_overlap: images with a side larger than ``tile_size`` are cut into
    overlapping tiles (each preprocessed like an image) and the instances merged (None: never tile).

    amp: autocast on CUDA; fold_bn: fold FrozenBN into the convolutions after loading (same results,
    faster); execution: how the model runs here (``inference.engine.execution.ExecutionPolicy``;
    default ``ExecutionPolicy.for_inference(device)``, same results up to rounding); tile_batch: tiles
    run through the model at once. Weights are read as data only (``inference.checkpoint``).
    bf16: run the backbone under CPU bf16 autocast where the CPU has native bf16 (``cpu_has_native_bf16``;
    ignored elsewhere and on GPUs); None: the config's ``TEST.CPU_BF16`` (off unless a model's AP was
    checked in bf16; detectron2 configs never have it, so the parity fixtures stay exact fp32).
    """

    def __init__(self, config: str | os.PathLike | CfgNode, weights: str | os.PathLike | None, device: str = "cpu",
                 class_names: Sequence[str] | None = None, *, tile_size: int | None = None, tile_overlap: int = 128,
                 amp: bool = False, fold_bn: bool = True, execution: ExecutionPolicy | None = None,
                 strict: bool = True, physical_scale: bool = True,
                 tile_overlap_um: float = TILE_OVERLAP_UM, tile_batch: int = 4, bf16: bool | None = None):
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
        if bf16 is None:  # a model's config says whether its accuracy was checked in bf16 (TEST.CPU_BF16)
            bf16 = bool(self.cfg.TEST.get("CPU_BF16", False))
        self.bf16 = bool(bf16) and self.device.type == "cpu" and cpu_has_native_bf16()
        if self.bf16:
            self.model.backbone = Bf16Backbone(self.model.backbone)
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
        self.model_um_per_px, self.trained_um_range = model_scale(self.cfg)
        self.physical_scale = bool(physical_scale)
        self.tile_overlap_um = float(tile_overlap_um)
        self.tile_batch = max(1, int(tile_batch))
        # the largest square the model's own resize could feed it (MIN x MAX_SIZE_TEST px), 32-aligned
        side = int(np.sqrt(self.min_size_test * self.max_size_test)) // 32 * 32
        self.tile_side = max(64, min(side, self.max_size_test))

    # scale and model inputs ------------------------------------------------------------------
    def scale_plan(self, um_per_px: float | None) -> ScalePlan:
        """How an image of pixel size ``um_per_px`` reaches this model (see :class:`ScalePlan`)."""
        model_um = self.model_um_per_px if self.physical_scale else None
        return scale_plan(um_per_px, model_um, self.trained_um_range)

    def _pieces(self, rgb: np.ndarray, plan: ScalePlan, tile_size: int | None, tile_overlap: int
                ) -> list[_Piece]:
        h, w = rgb.shape[:2]
        if plan.factor is None:
            if tile_size and max(h, w) > tile_size:
                return [self._fixed_piece(rgb[y0:y1, x0:x1], (y0, x0, y1, x1))
                        for (y0, x0, y1, x1) in tile_windows(h, w, tile_size, tile_overlap)]
            return [self._fixed_piece(rgb, None)]
        nh, nw = scaled_size(h, w, plan.factor)
        fy, fx = nh / h, nw / w
        pil = Image.fromarray(rgb)
        if max(nh, nw) <= self.max_size_test and nh * nw <= self.min_size_test * self.max_size_test:
            return [_Piece(np.asarray(pil.resize((nw, nh), Image.BILINEAR)), (1.0 / fx, 1.0 / fy))]
        tile = self.tile_side
        overlap = min(int(np.ceil(self.tile_overlap_um / float(plan.model_um_per_px))), tile // 2)
        pieces = []
        for ty0, tx0, ty1, tx1 in tile_windows(nh, nw, tile, overlap):
            box = (tx0 / fx, ty0 / fy, tx1 / fx, ty1 / fy)  # the tile's extent in image px
            image = np.asarray(pil.resize((tx1 - tx0, ty1 - ty0), Image.BILINEAR, box=box))
            # the window's outer edges exactly at the image's (no float residue: no false "cut")
            window = (box[1], box[0], float(h) if ty1 == nh else box[3], float(w) if tx1 == nw else box[2])
            pieces.append(_Piece(image, (1.0 / fx, 1.0 / fy), (box[0], box[1]), window, margin=2.0 / min(fx, fy)))
        return pieces

    def _fixed_piece(self, rgb: np.ndarray, window: tuple[int, int, int, int] | None) -> _Piece:
        """detectron2's input: the short edge resized to MIN_SIZE_TEST (long edge <= MAX_SIZE_TEST)."""
        h, w = rgb.shape[:2]
        image = np.ascontiguousarray(rgb)
        if self.min_size_test > 0:
            image = resize_rgb(image, shortest_edge_size(h, w, self.min_size_test, self.max_size_test))
        offset = (float(window[1]), float(window[0])) if window is not None else (0.0, 0.0)
        return _Piece(image, (w / image.shape[1], h / image.shape[0]), offset, window)

    def _tensor(self, rgb: np.ndarray) -> torch.Tensor:
        img = rgb[:, :, ::-1] if self.input_format == "BGR" else rgb
        return torch.as_tensor(np.ascontiguousarray(img.astype("float32").transpose(2, 0, 1)))

    def _run(self, pieces: list[_Piece], sizes: list[tuple[int, int]]) -> list[TileInstances]:
        """The model on ``pieces`` (of images of ``sizes`` (H, W)); per piece its instances in image px,
        masks pasted as crops."""
        from .structures import Boxes
        from .structures.masks import paste_masks_in_windows

        inputs = [{"image": self._tensor(p.image)} for p in pieces]
        with torch.inference_mode(), torch.autocast("cuda", enabled=self.amp):
            results = self.model.inference(inputs, do_postprocess=False)
        out = []
        for inst, piece, hw in zip(results, pieces, sizes):
            window = piece.window if piece.window is not None else (0.0, 0.0, float(hw[0]), float(hw[1]))
            n = len(inst) if inst.get_fields() else 0
            if not n:
                out.append(TileInstances(window, np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                                         np.zeros(0, np.int64), CroppedMasks.empty(hw), piece.margin))
                continue
            # detector_postprocess, generalised to an offset: scale, shift, clip, drop empty boxes
            boxes = Boxes(inst.pred_boxes.tensor.float().clone())
            boxes.scale(piece.scale[0], piece.scale[1])
            if piece.offset != (0.0, 0.0):
                ox, oy = piece.offset
                boxes.tensor += torch.tensor([ox, oy, ox, oy], dtype=boxes.tensor.dtype, device=boxes.tensor.device)
            boxes.clip(hw)
            keep = boxes.nonempty()
            kept = boxes.tensor[keep]
            if inst.has("pred_masks"):
                probs = inst.pred_masks[keep]
                probs = probs[:, 0] if probs.dim() == 4 else probs
                windows, crops = paste_masks_in_windows(probs, kept, hw)
                masks = CroppedMasks(hw, windows, crops)
            else:
                k = int(keep.sum())
                masks = CroppedMasks(hw, np.zeros((k, 4), np.int64), [np.zeros((0, 0), bool)] * k)
            out.append(TileInstances(window, kept.cpu().numpy().astype(np.float32),
                                     inst.scores[keep].float().cpu().numpy().astype(np.float32),
                                     inst.pred_classes[keep].cpu().numpy().astype(np.int64), masks, piece.margin))
        return out

    def _wrap(self, boxes, scores, classes, masks: CroppedMasks, image_size, um_per_px, plan: ScalePlan,
              tiles: int) -> Prediction:
        return Prediction(boxes=boxes, scores=scores, class_ids=classes,
                          class_names=[self.class_names[int(c)] for c in classes], instance_masks=masks,
                          image_size=(int(image_size[0]), int(image_size[1])),
                          um_per_px=None if um_per_px is None else float(um_per_px), scale_status=plan.status,
                          scale_warning=plan.warning, model_um_per_px=plan.model_um_per_px, tiles=tiles)

    def _predict_rgb(self, rgb: np.ndarray, um_per_px: float | None, tile_size: int | None,
                     tile_overlap: int) -> Prediction:
        plan = self.scale_plan(um_per_px)
        pieces = self._pieces(rgb, plan, tile_size, tile_overlap)
        hw = (int(rgb.shape[0]), int(rgb.shape[1]))
        if len(pieces) == 1 and pieces[0].window is None:
            t = self._run(pieces, [hw])[0]
            return self._wrap(t.boxes, t.scores, t.classes, t.masks, hw, um_per_px, plan, 1)
        tiles: list[TileInstances] = []
        for start in range(0, len(pieces), self.tile_batch):
            batch = pieces[start:start + self.tile_batch]
            tiles.extend(self._run(batch, [hw] * len(batch)))
        boxes, scores, classes, masks = merge_tiles(tiles, hw)
        return self._wrap(boxes, scores, classes, masks, hw, um_per_px, plan, len(pieces))

    # public API -------------------------------------------------------------------------------
    def predict(self, image: Any, um_per_px: float | None = None, *, tile_size: int | None = None,
                tile_overlap: int | None = None) -> Prediction:
        """Instances in one RGB image (uint8 HxWx3 array, PIL image or path); see :class:`Prediction`.

        ``um_per_px``: the image's pixel size (µm per pixel), for the physical scale and µm measurements.
        """
        rgb = load_image_rgb(image)
        tile_size = self.tile_size if tile_size is None else tile_size
        tile_overlap = self.tile_overlap if tile_overlap is None else tile_overlap
        return self._predict_rgb(rgb, um_per_px, tile_size, tile_overlap)

    def predict_batch(self, images: Sequence[Any], um_per_px: float | Sequence[float | None] | None = None,
                      batch_size: int = 4) -> list[Prediction]:
        """Predict several images; those that reach the model whole go through it ``batch_size`` at a time."""
        images = list(images)
        scales = list(um_per_px) if isinstance(um_per_px, (list, tuple, np.ndarray)) else [um_per_px] * len(images)
        if len(scales) != len(images):
            raise ValueError("um_per_px needs one value per image")
        rgbs = [load_image_rgb(x) for x in images]
        plans = [self.scale_plan(s) for s in scales]
        out: list[Prediction | None] = [None] * len(rgbs)
        whole: list[tuple[int, _Piece]] = []
        for i, (rgb, plan) in enumerate(zip(rgbs, plans)):
            pieces = self._pieces(rgb, plan, self.tile_size, self.tile_overlap)
            if len(pieces) == 1 and pieces[0].window is None:
                whole.append((i, pieces[0]))
            else:
                out[i] = self._predict_rgb(rgb, scales[i], self.tile_size, self.tile_overlap)
        step = max(1, batch_size)
        for start in range(0, len(whole), step):
            chunk = whole[start:start + step]
            sizes = [(int(rgbs[i].shape[0]), int(rgbs[i].shape[1])) for i, _ in chunk]
            for (i, _), hw, t in zip(chunk, sizes, self._run([p for _, p in chunk], sizes)):
                out[i] = self._wrap(t.boxes, t.scores, t.classes, t.masks, hw, scales[i], plans[i], 1)
        return out  # type: ignore[return-value]

    __call__ = predict
