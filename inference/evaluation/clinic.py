"""The figures a clinic reads: precision/recall/F1 of the target class at the operating score
threshold, a confusion matrix between classes, and a precision–recall curve as PNG.

Matching is by mask IoU (COCO RLE) >= ``iou_thresh`` (0.5), greedy in descending score order, each
ground-truth cell used once (as COCO does). Inputs per image: ground truth ``(rles, classes)`` and
predictions ``(rles, classes, scores)`` with 0-based classes.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pycocotools import mask as mask_utils


def _iou(pred_rles: list, gt_rles: list) -> np.ndarray:
    if not pred_rles or not gt_rles:
        return np.zeros((len(pred_rles), len(gt_rles)))
    return np.asarray(mask_utils.iou(pred_rles, gt_rles, [0] * len(gt_rles)), dtype=np.float64).reshape(len(pred_rles), len(gt_rles))


def _greedy(iou: np.ndarray, order: np.ndarray, iou_thresh: float) -> dict[int, int]:
    """pred index -> gt index."""
    used: set[int] = set()
    match: dict[int, int] = {}
    for i in order:
        best, best_iou = -1, iou_thresh
        for j in range(iou.shape[1]):
            if j not in used and iou[i, j] >= best_iou:
                best, best_iou = j, iou[i, j]
        if best >= 0:
            used.add(best)
            match[int(i)] = best
    return match


def class_prf(images: Sequence[dict], class_index: int, score_thresh: float, iou_thresh: float = 0.5) -> dict:
    """Precision, recall and F1 of one class at a score threshold over ``images``
    (each ``{"gt_rles", "gt_classes", "pred_rles", "pred_classes", "scores"}``)."""
    tp = fp = fn = 0
    for im in images:
        gi = [j for j, c in enumerate(im["gt_classes"]) if c == class_index]
        pi = [i for i, (c, s) in enumerate(zip(im["pred_classes"], im["scores"])) if c == class_index and s >= score_thresh]
        iou = _iou([im["pred_rles"][i] for i in pi], [im["gt_rles"][j] for j in gi])
        order = np.argsort([-im["scores"][i] for i in pi], kind="stable")
        m = _greedy(iou, order, iou_thresh)
        tp += len(m)
        fp += len(pi) - len(m)
        fn += len(gi) - len(m)
    precision = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"score_thresh": score_thresh, "iou_thresh": iou_thresh, "tp": tp, "fp": fp, "fn": fn,
            "precision": precision, "recall": recall, "f1": f1}


def confusion_matrix(images: Sequence[dict], num_classes: int, score_thresh: float, iou_thresh: float = 0.5,
                     dedupe_iou: float = 0.7) -> np.ndarray:
    """Counts ``[K + 1, K + 1]``: row = true class (K: background, i.e. a detection on no cell),
    column = predicted class (K: missed, i.e. a cell with no detection).

    Detections at or above ``score_thresh`` are first reduced to one per cell (a detection whose mask
    overlaps a higher-scoring one by IoU > ``dedupe_iou`` is dropped, whatever its class: the cascade
    often gives one box several classes), then matched to cells of any class.
    """
    K = num_classes
    cm = np.zeros((K + 1, K + 1), np.int64)
    for im in images:
        keep_idx = [i for i, s in enumerate(im["scores"]) if s >= score_thresh]
        keep_idx.sort(key=lambda i: -im["scores"][i])
        rles = [im["pred_rles"][i] for i in keep_idx]
        self_iou = _iou(rles, rles)
        kept: list[int] = []
        for a in range(len(keep_idx)):
            if all(self_iou[a, b] <= dedupe_iou for b in kept):
                kept.append(a)
        preds = [keep_idx[a] for a in kept]
        iou = _iou([im["pred_rles"][i] for i in preds], list(im["gt_rles"]))
        m = _greedy(iou, np.arange(len(preds)), iou_thresh)
        matched_gt = set(m.values())
        for a, i in enumerate(preds):
            pc = int(im["pred_classes"][i])
            if a in m:
                cm[int(im["gt_classes"][m[a]]), pc] += 1
            else:
                cm[K, pc] += 1
        for j, c in enumerate(im["gt_classes"]):
            if j not in matched_gt:
                cm[int(c), K] += 1
    return cm


def plot_pr_curve(precision: np.ndarray, class_index: int, class_name: str, path: str,
                  operating_point: dict | None = None, title: str | None = None) -> str:
    """Save the COCO precision–recall curves (IoU 0.5, 0.75 and the 0.5:0.95 mean) of one class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rec = np.linspace(0, 1, precision.shape[1])
    fig, ax = plt.subplots(figsize=(5, 4.2), dpi=110)
    for label, p in (("IoU 0.50", precision[0, :, class_index, 0, -1]), ("IoU 0.75", precision[5, :, class_index, 0, -1]),
                     ("IoU 0.50:0.95", np.mean(precision[:, :, class_index, 0, -1], axis=0))):
        p = np.where(p < 0, np.nan, p)
        ax.plot(rec, p, label=label)
    if operating_point:
        ax.plot([operating_point["recall"]], [operating_point["precision"]], "ko",
                label=f"score >= {operating_point['score_thresh']:.2f} (IoU 0.5)")
    ax.set_xlim(0, 1.0)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title or f"{class_name}: precision–recall (segm)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
