"""Evaluate a model (config + weights, or a bundle) on a COCO dataset.

Predictions come from :class:`inference.predictor.Predictor`, the path the portal uses. Output
(``output_dir``): ``metrics.json`` (COCO figures, round_spermatid P/R/F1 at the operating threshold,
confusion matrix), ``coco_results.json``, ``pr_curve_round_spermatid.png``, ``confusion_matrix.csv``.
"""
from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence

from ..data.classes import TARGET_CLASS
from ..data.coco import CocoDataset, load_coco, segmentation_to_rle, to_coco_dict
from ..pixels import read_rgb
from .clinic import class_prf, confusion_matrix, plot_pr_curve
from .coco_eval import coco_evaluate

DEFAULT_SCORE_THRESH = 0.5


def _nan_to_none(x):
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_nan_to_none(v) for v in x]
    return x


def evaluate_predictions(dataset: CocoDataset, predictions: dict[int, dict], *, score_thresh: float = DEFAULT_SCORE_THRESH,
                         target_class: str = TARGET_CLASS, output_dir: str | None = None) -> dict:
    """Metrics for ``predictions``: ``{image_id: {"rles": [RLE], "classes": [int 0-based], "scores":
    [float], "boxes": [[x1, y1, x2, y2]]}}`` against ``dataset``.

    Returns ``{"bbox": {...}, "segm": {...}, "target": {class, precision, recall, f1, ...},
    "confusion_matrix": {"labels", "rows", "matrix"}, "images", "score_thresh"}`` (AP as 0..1).
    """
    names = list(dataset.class_names)
    results, per_image = [], []
    for r in dataset.records:
        p = predictions.get(r["image_id"], {"rles": [], "classes": [], "scores": [], "boxes": []})
        for rle, c, s, b in zip(p["rles"], p["classes"], p["scores"], p["boxes"]):
            results.append({"image_id": r["image_id"], "category_id": dataset.category_ids[int(c)],
                            "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
                            "score": float(s), "segmentation": rle})
        gts = [a for a in r["annotations"] if not a.get("iscrowd", 0)]
        per_image.append({"gt_rles": [segmentation_to_rle(a["segmentation"], r["height"], r["width"]) for a in gts],
                          "gt_classes": [a["category_id"] for a in gts],
                          "pred_rles": [_rle_bytes(x) for x in p["rles"]], "pred_classes": list(p["classes"]),
                          "scores": list(p["scores"])})
    coco = coco_evaluate(to_coco_dict(dataset), results, names, dataset.category_ids)
    precision = coco.pop("_precision")
    metrics: dict = {"images": len(dataset.records), "score_thresh": score_thresh, "bbox": coco["bbox"],
                     "segm": coco["segm"]}
    if target_class in names:
        k = names.index(target_class)
        target = class_prf(per_image, k, score_thresh)
        target.update({"class": target_class, "segm_AP": coco["segm"]["per_class"][target_class]["AP"],
                       "segm_AP50": coco["segm"]["per_class"][target_class]["AP50"],
                       "bbox_AP": coco["bbox"]["per_class"][target_class]["AP"]})
        metrics["target"] = target
    cm = confusion_matrix(per_image, len(names), score_thresh)
    metrics["confusion_matrix"] = {"rows": "true class (last: background)", "columns": "predicted class (last: missed)",
                                   "labels": names + ["background/missed"], "matrix": cm.tolist()}
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        with open(os.path.join(output_dir, "coco_results.json"), "w", encoding="utf-8") as f:
            json.dump(results, f)
        with open(os.path.join(output_dir, "confusion_matrix.csv"), "w", encoding="utf-8") as f:
            f.write("true\\predicted," + ",".join(names + ["missed"]) + "\n")
            for label, row in zip(names + ["background"], cm.tolist()):
                f.write(label + "," + ",".join(map(str, row)) + "\n")
        if target_class in names and "segm" in precision:
            metrics["pr_curve_png"] = plot_pr_curve(precision["segm"], names.index(target_class), target_class,
                                                    os.path.join(output_dir, f"pr_curve_{target_class}.png"),
                                                    operating_point=metrics.get("target"))
        with open(os.path.join(output_dir, "metrics.json"), "w", encoding="utf-8") as f:
            json.dump(_nan_to_none(metrics), f, indent=1)
    metrics["summary_text"] = summary_text(metrics)
    return metrics


def _rle_bytes(rle: dict) -> dict:
    c = rle["counts"]
    return {"size": list(rle["size"]), "counts": c.encode("ascii") if isinstance(c, str) else c}


def summary_text(metrics: dict) -> str:
    def f(v):
        return "  nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"

    lines = [f"{metrics['images']} images; AP as fractions (pycocotools)",
             f"{'class':22s} {'segm AP':>8s} {'AP50':>6s} {'AP75':>6s} {'bbox AP':>8s}"]
    for name, v in metrics["segm"]["per_class"].items():
        lines.append(f"{name:22s} {f(v['AP']):>8s} {f(v['AP50']):>6s} {f(v['AP75']):>6s} "
                     f"{f(metrics['bbox']['per_class'][name]['AP']):>8s}")
    lines.append(f"{'all classes':22s} {f(metrics['segm']['AP']):>8s} {f(metrics['segm']['AP50']):>6s} "
                 f"{f(metrics['segm']['AP75']):>6s} {f(metrics['bbox']['AP']):>8s}")
    t = metrics.get("target")
    if t:
        lines.append(f"{t['class']} at score >= {t['score_thresh']:.2f}: precision {t['precision']:.3f}  "
                     f"recall {t['recall']:.3f}  F1 {t['f1']:.3f}  (TP {t['tp']}, FP {t['fp']}, FN {t['fn']})")
    return "\n".join(lines)


def predict_dataset(predictor, dataset: CocoDataset, batch_size: int = 2, progress: bool = False) -> tuple[dict, float]:
    """Run ``predictor`` (an :class:`inference.predictor.Predictor`) on every image of ``dataset``;
    returns (predictions by image id, seconds per image)."""

    out: dict[int, dict] = {}
    t0 = time.perf_counter()
    recs = dataset.records
    it = range(0, len(recs), batch_size)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, unit="batch")
    for start in it:
        chunk = recs[start:start + batch_size]
        rgbs = [read_rgb(r["file_name"]) for r in chunk]
        preds = predictor.predict_batch(rgbs, [r.get("um_per_px") for r in chunk], batch_size=batch_size)
        for r, p in zip(chunk, preds):
            out[r["image_id"]] = {"rles": p.masks_rle() if len(p) else [], "classes": p.class_ids.tolist(),
                                  "scores": p.scores.tolist(), "boxes": p.boxes.tolist()}
    return out, (time.perf_counter() - t0) / max(1, len(recs))


def evaluate_predictor(predictor, json_path: str, *, image_root: str | None = None, class_names: Sequence[str] | None = None,
                       score_thresh: float = DEFAULT_SCORE_THRESH, output_dir: str | None = None,
                       progress: bool = False) -> dict:
    names = tuple(class_names or predictor.class_names)
    dataset = load_coco(json_path, image_root=image_root, class_names=names, unknown_classes="skip")
    preds, s_per_image = predict_dataset(predictor, dataset, progress=progress)
    metrics = evaluate_predictions(dataset, preds, score_thresh=score_thresh, output_dir=output_dir)
    metrics["seconds_per_image"] = s_per_image
    metrics["dataset"] = os.path.abspath(json_path)
    return metrics


def evaluate_model_files(config_path: str, weights_path: str, json_path: str, *, class_names: Sequence[str] | None = None,
                         output_dir: str | None = None, device: str | None = None, training_config: bool = False,
                         score_thresh: float = DEFAULT_SCORE_THRESH, image_root: str | None = None) -> dict:
    """Evaluate ``weights_path`` with ``config_path``. ``training_config``: the config is a training one
    (extra keys, BatchNorm): it is turned into the inference config first."""
    from ..config import ConfigError, load_config
    from ..data.classes import CLASS_NAMES
    from ..engine.defaults import inference_config, load_training_config
    from ..predictor import Predictor

    if training_config:
        cfg = inference_config(load_training_config(config_path))
    else:
        try:
            cfg = load_config(config_path)
        except ConfigError:  # a training config (augmentation keys): ship it as the inference config
            cfg = inference_config(load_training_config(config_path))
    names = list(class_names or CLASS_NAMES[: cfg.MODEL.ROI_HEADS.NUM_CLASSES])
    predictor = Predictor(cfg, weights_path, device=device or "cpu", class_names=names)
    return evaluate_predictor(predictor, json_path, image_root=image_root, class_names=names,
                              score_thresh=score_thresh, output_dir=output_dir)


def evaluate_bundle(bundle_path: str, json_path: str, *, output_dir: str | None = None, device: str = "cpu",
                    score_thresh: float | None = None, image_root: str | None = None) -> dict:
    from ..bundle import load_bundle

    b = load_bundle(bundle_path)
    thr = score_thresh if score_thresh is not None else float(b.metrics.get("score_thresh", DEFAULT_SCORE_THRESH) or DEFAULT_SCORE_THRESH)
    return evaluate_predictor(b.predictor(device=device), json_path, image_root=image_root, class_names=b.class_names,
                              score_thresh=thr, output_dir=output_dir)
