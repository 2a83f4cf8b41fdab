"""COCO bbox/segm AP, AP50, AP75 overall and per class with pycocotools.

Figures are fractions in 0..1 (detectron2 prints percentages); a class without ground truth in the
evaluated set gets NaN. Predictions are COCO results: ``{"image_id", "category_id" (the dataset's
COCO category id), "bbox" [x, y, w, h], "score", "segmentation" (RLE)}``.
"""
from __future__ import annotations

import contextlib
import copy
import io
import math
from collections.abc import Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

SUMMARY_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def coco_from_dict(data: dict) -> COCO:
    coco = COCO()
    data = copy.deepcopy(data)
    for a in data.get("annotations", []):
        a.setdefault("iscrowd", 0)
        if "area" not in a:
            a["area"] = float(a["bbox"][2] * a["bbox"][3])
    data.setdefault("info", {})
    data.setdefault("licenses", [])
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _per_class(precision: np.ndarray, k: int, iou_index: int | None) -> float:
    p = precision[:, :, k, 0, -1] if iou_index is None else precision[iou_index, :, k, 0, -1]
    p = p[p > -1]
    return float(np.mean(p)) if p.size else math.nan


def coco_evaluate(gt: dict | COCO, results: list[dict], class_names: Sequence[str], category_ids: Sequence[int],
                  iou_types: Sequence[str] = ("bbox", "segm")) -> dict:
    """``{iou_type: {"AP", "AP50", "AP75", "APs", "APm", "APl", "per_class": {name: {"AP", "AP50",
    "AP75"}}}, "_precision": {iou_type: array [T, R, K, A, M]}}``."""
    coco_gt = gt if isinstance(gt, COCO) else coco_from_dict(gt)
    out: dict = {"_precision": {}}
    for iou_type in iou_types:
        res = [r for r in results if iou_type != "segm" or "segmentation" in r]
        if iou_type == "bbox":
            res = [{k: v for k, v in r.items() if k != "segmentation"} for r in res]
        if not res:  # nothing detected: 0 where there is ground truth, NaN where there is none
            has_gt = [bool(coco_gt.getAnnIds(catIds=[c], iscrowd=False)) for c in category_ids]
            out[iou_type] = {k: (0.0 if any(has_gt) else math.nan) for k in SUMMARY_KEYS}
            out[iou_type]["per_class"] = {n: {k: (0.0 if g else math.nan) for k in ("AP", "AP50", "AP75")}
                                          for n, g in zip(class_names, has_gt)}
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            coco_dt = coco_gt.loadRes(copy.deepcopy(res))
            ev = COCOeval(coco_gt, coco_dt, iou_type)
            ev.params.catIds = list(category_ids)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        stats = {k: float(v) for k, v in zip(SUMMARY_KEYS, ev.stats[:6])}
        stats = {k: (math.nan if v < 0 else v) for k, v in stats.items()}
        precision = ev.eval["precision"]
        stats["per_class"] = {name: {"AP": _per_class(precision, k, None), "AP50": _per_class(precision, k, 0),
                                     "AP75": _per_class(precision, k, 5)}
                              for k, name in enumerate(class_names)}
        out[iou_type] = stats
        out["_precision"][iou_type] = precision
    return out
