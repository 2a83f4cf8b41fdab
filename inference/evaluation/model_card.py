"""The figures of a model card and of the promotion gate, from a COCO ground truth and COCO results.

Inputs are plain JSON-shaped data, so the portal can pass what it stores:

- ``gt``: a COCO instances dict; images may carry ``um_per_px`` (µm per pixel) and ``center`` (any
  label of the clinic the image comes from); annotations have ``segmentation`` (polygons or RLE).
- predictions: COCO results ``{"image_id", "category_id" (a category id of ``gt``), "score", "bbox"
  [x, y, w, h], "segmentation" (RLE)}``.

Classes are matched by name (``gt["categories"][*]["name"]``), never by id alone.

Matching (:func:`match_images`) follows pycocotools at one IoU threshold: per image and class, the
(at most 100) detections in descending score order each take the unmatched ground-truth instance of
that class with the highest mask IoU >= the threshold. AP is the 101-point interpolated precision of
pycocotools, so :func:`ap_from_matches` gives pycocotools' segm AP50 for the same data; the paired
bootstrap reuses one matching for all its replicates.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pycocotools import mask as mask_utils

from ..data.coco import segmentation_to_rle
from .clinic import confusion_matrix
from .coco_eval import coco_evaluate

RECALL_POINTS = np.linspace(0.0, 1.0, 101)
MAX_DETECTIONS = 100
DEFAULT_PIXEL_SIZE_EDGES = (0.15, 0.2, 0.25, 0.3, 0.4)


@dataclass
class ImageMatches:
    """One image's matching for one class: detection scores, whether each is a true positive, and the
    number of ground-truth instances of the class."""

    scores: np.ndarray   # float64 [D]
    is_tp: np.ndarray    # bool [D]
    n_gt: int


def _category_ids_by_name(gt: dict, class_names: Sequence[str]) -> dict[str, int]:
    by_name = {c["name"]: int(c["id"]) for c in gt.get("categories", [])}
    missing = [n for n in class_names if n not in by_name]
    if missing:
        raise ValueError(f"classes {missing} are not categories of the ground truth ({sorted(by_name)})")
    return {n: by_name[n] for n in class_names}


def _pred_rle(p: dict, h: int, w: int) -> dict:
    seg = p.get("segmentation")
    if seg is None:
        x, y, bw, bh = p["bbox"]
        return mask_utils.frPyObjects([[x, y, x + bw, y, x + bw, y + bh, x, y + bh]], h, w)[0]
    rle = segmentation_to_rle(seg, h, w)
    c = rle["counts"]
    return {"size": list(rle["size"]), "counts": c.encode("ascii") if isinstance(c, str) else c}


def _gt_rle(a: dict, h: int, w: int) -> dict:
    rle = segmentation_to_rle(a["segmentation"], h, w)
    c = rle["counts"]
    return {"size": list(rle["size"]), "counts": c.encode("ascii") if isinstance(c, str) else c}


def _group(gt: dict, predictions: Sequence[dict]) -> tuple[list[dict], dict[int, list[dict]], dict[int, list[dict]]]:
    images = list(gt.get("images", []))
    known = {int(im["id"]) for im in images}
    anns: dict[int, list[dict]] = {i: [] for i in known}
    for a in gt.get("annotations", []):
        if not a.get("iscrowd", 0) and int(a["image_id"]) in anns:
            anns[int(a["image_id"])].append(a)
    preds: dict[int, list[dict]] = {i: [] for i in known}
    for p in predictions:
        if int(p["image_id"]) in preds:
            preds[int(p["image_id"])].append(p)
    return images, anns, preds


def _match_one(gt_rles: list, pred_rles: list, scores: np.ndarray, iou: float) -> np.ndarray:
    """is_tp per detection (already sorted by descending score), pycocotools' greedy rule."""
    tp = np.zeros(len(pred_rles), bool)
    if not gt_rles or not pred_rles:
        return tp
    ious = np.asarray(mask_utils.iou(pred_rles, gt_rles, [0] * len(gt_rles)), np.float64).reshape(len(pred_rles), len(gt_rles))
    used = np.zeros(len(gt_rles), bool)
    for i in range(len(pred_rles)):
        best, best_iou = -1, min(iou, 1 - 1e-10)
        for j in range(len(gt_rles)):
            if not used[j] and ious[i, j] >= best_iou:
                best, best_iou = j, ious[i, j]
        if best >= 0:
            used[best] = True
            tp[i] = True
    return tp


def match_images(*, gt: dict, predictions: Sequence[dict], class_name: str, iou: float = 0.5) -> list[ImageMatches]:
    """Per image of ``gt`` (in its order): the matching of ``class_name``'s detections at mask IoU >= ``iou``."""
    cat = _category_ids_by_name(gt, [class_name])[class_name]
    images, anns, preds = _group(gt, predictions)
    out = []
    for im in images:
        h, w = int(im["height"]), int(im["width"])
        g = [_gt_rle(a, h, w) for a in anns[int(im["id"])] if int(a["category_id"]) == cat]
        ps = sorted((p for p in preds[int(im["id"])] if int(p["category_id"]) == cat), key=lambda p: -float(p["score"]))
        ps = ps[:MAX_DETECTIONS]
        scores = np.array([float(p["score"]) for p in ps], np.float64)
        tp = _match_one(g, [_pred_rle(p, h, w) for p in ps], scores, iou)
        out.append(ImageMatches(scores=scores, is_tp=tp, n_gt=len(g)))
    return out


def _interpolated_ap(tp_cum: np.ndarray, fp_cum: np.ndarray, n_gt: float) -> float:
    """pycocotools' 101-point interpolated AP from cumulative TP/FP counts in score order."""
    if n_gt <= 0:
        return math.nan
    if tp_cum.size == 0:
        return 0.0
    recall = tp_cum / n_gt
    precision = tp_cum / np.maximum(tp_cum + fp_cum, np.finfo(np.float64).eps)
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    idx = np.searchsorted(recall, RECALL_POINTS, side="left")
    q = np.where(idx < precision.size, precision[np.minimum(idx, precision.size - 1)], 0.0)
    return float(q.mean())


def _pooled(matches: Sequence[ImageMatches]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores, is_tp, image index) of all detections, sorted as pycocotools does (stable, by score)."""
    if not matches:
        return np.zeros(0), np.zeros(0, bool), np.zeros(0, np.int64)
    scores = np.concatenate([m.scores for m in matches])
    tp = np.concatenate([m.is_tp for m in matches])
    img = np.concatenate([np.full(m.scores.size, i, np.int64) for i, m in enumerate(matches)])
    order = np.argsort(-scores, kind="mergesort")
    return scores[order], tp[order], img[order]


def ap_from_matches(matches: Sequence[ImageMatches]) -> float:
    """101-point interpolated AP over ``matches`` (NaN without ground truth)."""
    _, tp, _ = _pooled(matches)
    n_gt = sum(m.n_gt for m in matches)
    return _interpolated_ap(np.cumsum(tp), np.cumsum(~tp), n_gt)


def pr_curve_from_matches(matches: Sequence[ImageMatches]) -> dict:
    """Interpolated precision at the 101 recall points, and the score reached at each."""
    scores, tp, _ = _pooled(matches)
    n_gt = sum(m.n_gt for m in matches)
    if n_gt == 0 or scores.size == 0:
        return {"recall": RECALL_POINTS.round(2).tolist(), "precision": [0.0] * RECALL_POINTS.size,
                "score": [None] * RECALL_POINTS.size}
    tp_cum, fp_cum = np.cumsum(tp), np.cumsum(~tp)
    recall = tp_cum / n_gt
    precision = np.maximum.accumulate((tp_cum / (tp_cum + fp_cum))[::-1])[::-1]
    idx = np.searchsorted(recall, RECALL_POINTS, side="left")
    ok = idx < precision.size
    safe = np.minimum(idx, precision.size - 1)
    return {"recall": RECALL_POINTS.round(2).tolist(),
            "precision": np.where(ok, precision[safe], 0.0).round(4).tolist(),
            "score": [round(float(scores[i]), 4) if o else None for i, o in zip(safe, ok)]}


# -- the model card ------------------------------------------------------------------------------

def _per_image_for_confusion(gt: dict, predictions: Sequence[dict], class_names: Sequence[str]) -> list[dict]:
    cats = _category_ids_by_name(gt, class_names)
    index = {cid: k for k, cid in enumerate(cats[n] for n in class_names)}
    images, anns, preds = _group(gt, predictions)
    out = []
    for im in images:
        h, w = int(im["height"]), int(im["width"])
        g = [a for a in anns[int(im["id"])] if int(a["category_id"]) in index]
        p = [x for x in preds[int(im["id"])] if int(x["category_id"]) in index]
        out.append({"gt_rles": [_gt_rle(a, h, w) for a in g], "gt_classes": [index[int(a["category_id"])] for a in g],
                    "pred_rles": [_pred_rle(x, h, w) for x in p], "pred_classes": [index[int(x["category_id"])] for x in p],
                    "scores": [float(x["score"]) for x in p]})
    return out


def calibration(matches_by_class: dict[str, list[ImageMatches]], n_bins: int = 10) -> dict:
    """Reliability diagram over all detections of all classes: per score bin the mean score, the
    fraction that are true positives (IoU >= 0.5 with a cell of their class) and the count; ECE is
    the count-weighted mean of |mean score - fraction true|."""
    scores = np.concatenate([m.scores for ms in matches_by_class.values() for m in ms] or [np.zeros(0)])
    tp = np.concatenate([m.is_tp for ms in matches_by_class.values() for m in ms] or [np.zeros(0, bool)])
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(scores, edges[1:-1], right=False), 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        sel = which == b
        n = int(sel.sum())
        mean_score = float(scores[sel].mean()) if n else None
        frac = float(tp[sel].mean()) if n else None
        if n:
            ece += n * abs(mean_score - frac)
        bins.append({"low": round(float(edges[b]), 4), "high": round(float(edges[b + 1]), 4), "mean_score": mean_score,
                     "fraction_true_positive": frac, "count": n})
    total = int(scores.size)
    return {"bins": bins, "ece": (ece / total) if total else None, "detections": total}


def _pixel_size_label(um: float | None, edges: Sequence[float]) -> str:
    if um is None or not um > 0:
        return "unknown"
    lows = [0.0, *edges]
    highs = [*edges, math.inf]
    for lo, hi in zip(lows, highs):
        if lo <= um < hi:
            return f"{lo:g}-{hi:g}" if math.isfinite(hi) else f">={lo:g}"
    return "unknown"


def _nan_to_none(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_nan_to_none(v) for v in x]
    return x


def card_metrics(*, gt: dict, predictions: list[dict], class_names: Sequence[str], score_thresh: float = 0.5,
                 target_class: str = "round_spermatid",
                 pixel_size_edges: Sequence[float] = DEFAULT_PIXEL_SIZE_EDGES) -> dict:
    """Everything a model card shows, JSON-serialisable (NaN written as None):

    ``images``, ``score_thresh``; ``segm`` / ``bbox``: pycocotools AP, AP50, AP75 overall and
    ``per_class`` {name: {AP, AP50, AP75}}; ``pr_curves``: {name: {recall [101], precision [101],
    score [101]}} (segm, IoU 0.5); ``confusion_matrix``: {labels (classes + "background/missed"),
    matrix (rows: true class, last row background; columns: predicted class, last column missed)} at
    ``score_thresh``; ``calibration``: {bins [{low, high, mean_score, fraction_true_positive, count}],
    ece, detections}; ``per_center`` / ``per_pixel_size``: {label: {images, instances, AP50}} of
    ``target_class``; ``counts``: {name: {ground_truth, predicted (at the threshold)}}.
    """
    class_names = list(class_names)
    cats = _category_ids_by_name(gt, class_names)
    coco = coco_evaluate(gt, predictions, class_names, [cats[n] for n in class_names])
    coco.pop("_precision", None)
    matches = {n: match_images(gt=gt, predictions=predictions, class_name=n) for n in class_names}
    cm = confusion_matrix(_per_image_for_confusion(gt, predictions, class_names), len(class_names), score_thresh)
    images = list(gt.get("images", []))

    def subset_ap(labels: list[str]) -> dict:
        out: dict[str, dict] = {}
        if target_class not in matches:
            return out
        for label in sorted(set(labels)):
            sel = [m for m, lab in zip(matches[target_class], labels) if lab == label]
            out[label] = {"images": len(sel), "instances": int(sum(m.n_gt for m in sel)), "AP50": ap_from_matches(sel)}
        return out

    centers = [str(im["center"]) if im.get("center") not in (None, "") else "unknown" for im in images]
    sizes = [_pixel_size_label(im.get("um_per_px"), pixel_size_edges) for im in images]
    gt_counts = {n: 0 for n in class_names}
    name_of = {cid: n for n, cid in cats.items()}
    for a in gt.get("annotations", []):
        n = name_of.get(int(a["category_id"]))
        if n is not None and not a.get("iscrowd", 0):
            gt_counts[n] += 1
    pred_counts = {n: 0 for n in class_names}
    for p in predictions:
        n = name_of.get(int(p["category_id"]))
        if n is not None and float(p["score"]) >= score_thresh:
            pred_counts[n] += 1
    result = {
        "images": len(images), "score_thresh": score_thresh, "target_class": target_class,
        "segm": coco["segm"], "bbox": coco["bbox"],
        "pr_curves": {n: pr_curve_from_matches(matches[n]) for n in class_names},
        "confusion_matrix": {"labels": class_names + ["background/missed"],
                             "rows": "true class (last: background)", "columns": "predicted class (last: missed)",
                             "matrix": cm.tolist()},
        "calibration": calibration(matches),
        "per_center": subset_ap(centers),
        "per_pixel_size": subset_ap(sizes),
        "counts": {n: {"ground_truth": gt_counts[n], "predicted": pred_counts[n]} for n in class_names},
    }
    return _nan_to_none(result)


# -- the promotion gate --------------------------------------------------------------------------

def paired_bootstrap_ap50_difference(*, gt: dict, predictions_a: list[dict], predictions_b: list[dict],
                                     class_name: str = "round_spermatid", n_boot: int = 2000, seed: int = 0,
                                     iou: float = 0.5) -> dict:
    """AP50 of ``class_name`` for model A and model B on ``gt``, and the 95 % percentile interval of
    ``AP50(B) - AP50(A)`` over ``n_boot`` resamples of the images (with replacement, the same resample
    for both models). Each model's detections are matched once per image; a replicate only re-weights
    images. Returns ``{"ap50_a", "ap50_b", "difference", "low", "high", "n_images", "n_boot"}``
    (replicates without any ground truth of the class are left out)."""
    ma = match_images(gt=gt, predictions=predictions_a, class_name=class_name, iou=iou)
    mb = match_images(gt=gt, predictions=predictions_b, class_name=class_name, iou=iou)
    n = len(ma)
    ap_a, ap_b = ap_from_matches(ma), ap_from_matches(mb)
    if n == 0:
        raise ValueError("the ground truth has no images")
    rng = np.random.default_rng(seed)
    counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(n_boot)]).astype(np.float64)
    boot_a = _bootstrap_ap(ma, counts)
    boot_b = _bootstrap_ap(mb, counts)
    diff = boot_b - boot_a
    diff = diff[np.isfinite(diff)]
    low, high = (float(np.percentile(diff, 2.5)), float(np.percentile(diff, 97.5))) if diff.size else (math.nan, math.nan)
    return _nan_to_none({"ap50_a": ap_a, "ap50_b": ap_b, "difference": ap_b - ap_a, "low": low, "high": high,
                         "n_images": n, "n_boot": int(n_boot), "class_name": class_name, "iou": iou})


def _bootstrap_ap(matches: Sequence[ImageMatches], counts: np.ndarray, chunk: int = 250) -> np.ndarray:
    """AP per replicate; ``counts[r, i]`` = how often image ``i`` is drawn in replicate ``r``."""
    _, tp, img = _pooled(matches)
    n_gt = np.array([m.n_gt for m in matches], np.float64)
    npos = counts @ n_gt
    out = np.full(counts.shape[0], np.nan)
    if tp.size == 0:
        out[npos > 0] = 0.0
        return out
    tpf = tp.astype(np.float64)
    for start in range(0, counts.shape[0], chunk):
        w = counts[start:start + chunk][:, img]          # [R, D] weight of each detection
        tp_cum = np.cumsum(w * tpf, axis=1)
        fp_cum = np.cumsum(w * (1.0 - tpf), axis=1)
        for r in range(w.shape[0]):
            out[start + r] = _interpolated_ap(tp_cum[r], fp_cum[r], npos[start + r])
    return out


def per_class_ap_drop(*, gt: dict, predictions_a: list[dict], predictions_b: list[dict], class_names: Sequence[str],
                      max_drop: float = 0.02, metric: str = "AP") -> dict:
    """Per class the segm ``metric`` (pycocotools ``AP`` by default, or ``AP50``) of A (the current
    model) and B (the candidate) and ``drop`` = A - B; ``passes`` is True when no class with ground
    truth drops by more than ``max_drop``. Returns ``{"per_class": {name: {"a", "b", "drop"}},
    "worst_class", "worst_drop", "max_drop", "metric", "passes"}``."""
    class_names = list(class_names)
    cats = _category_ids_by_name(gt, class_names)
    ids = [cats[n] for n in class_names]
    ea = coco_evaluate(gt, predictions_a, class_names, ids, iou_types=("segm",))["segm"]["per_class"]
    eb = coco_evaluate(gt, predictions_b, class_names, ids, iou_types=("segm",))["segm"]["per_class"]
    per_class, worst, worst_drop = {}, None, -math.inf
    for name in class_names:
        a, b = ea[name][metric], eb[name][metric]
        drop = a - b if math.isfinite(a) and math.isfinite(b) else math.nan
        per_class[name] = {"a": a, "b": b, "drop": drop}
        if math.isfinite(drop) and drop > worst_drop:
            worst, worst_drop = name, drop
    passes = worst is None or worst_drop <= max_drop + 1e-12
    return _nan_to_none({"per_class": per_class, "worst_class": worst,
                         "worst_drop": worst_drop if worst is not None else None, "max_drop": max_drop,
                         "metric": metric, "passes": bool(passes)})


def promotion_comparison(*, gt: dict, predictions_current: list[dict], predictions_candidate: list[dict],
                         class_names: Sequence[str], target_class: str = "round_spermatid",
                         min_difference: float = -0.01, max_class_drop: float = 0.02, n_boot: int = 2000,
                         seed: int = 0) -> dict:
    """The promotion rule on one held-out set: the candidate passes when the lower end of the 95 %
    interval of its ``target_class`` AP50 minus the current model's is above ``min_difference`` and
    no class's AP drops by more than ``max_class_drop``. Returns ``{"bootstrap", "per_class",
    "passes", "reasons"}`` (reasons: why it fails, empty when it passes)."""
    boot = paired_bootstrap_ap50_difference(gt=gt, predictions_a=predictions_current,
                                            predictions_b=predictions_candidate, class_name=target_class,
                                            n_boot=n_boot, seed=seed)
    drops = per_class_ap_drop(gt=gt, predictions_a=predictions_current, predictions_b=predictions_candidate,
                              class_names=class_names, max_drop=max_class_drop)
    reasons = []
    if boot["low"] is None or not boot["low"] > min_difference:
        reasons.append(f"{target_class} AP50 difference interval starts at {boot['low']}, not above {min_difference}")
    if not drops["passes"]:
        reasons.append(f"{drops['worst_class']} AP drops by {drops['worst_drop']:.3f} (more than {max_class_drop})")
    return {"bootstrap": boot, "per_class": drops, "passes": not reasons, "reasons": reasons,
            "rule": {"min_difference": min_difference, "max_class_drop": max_class_drop, "target_class": target_class}}


# -- predictions in the COCO result format -------------------------------------------------------

def predict_coco(predictor, *, gt: dict, image_root: str | None = None, batch_size: int = 2) -> list[dict]:
    """COCO results of ``predictor`` (an :class:`inference.predictor.Predictor`) on every image of
    ``gt`` (file names relative to ``image_root``; each image's ``um_per_px`` is passed on). Classes
    are mapped to ``gt``'s categories by name; classes the ground truth lacks are left out."""
    import os

    from ..pixels import read_rgb

    by_name = {c["name"]: int(c["id"]) for c in gt.get("categories", [])}
    names = list(predictor.class_names)
    images = list(gt.get("images", []))
    out: list[dict] = []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        paths = [im["file_name"] if image_root is None or os.path.isabs(im["file_name"])
                 else os.path.join(image_root, im["file_name"]) for im in chunk]
        rgbs = [read_rgb(p) for p in paths]
        preds = predictor.predict_batch(rgbs, [im.get("um_per_px") for im in chunk], batch_size=batch_size)
        for im, p in zip(chunk, preds):
            if not len(p):
                continue
            rles = p.masks_rle()
            for rle, c, s, b in zip(rles, p.class_ids.tolist(), p.scores.tolist(), p.boxes.tolist()):
                cid = by_name.get(names[int(c)])
                if cid is None:
                    continue
                counts = rle["counts"]
                out.append({"image_id": int(im["id"]), "category_id": cid, "score": float(s),
                            "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
                            "segmentation": {"size": list(rle["size"]),
                                             "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}})
    return out
