"""Evaluation against hand-built cases with known answers."""
from __future__ import annotations

import json

import numpy as np
import pytest

from inference.data import CLASS_NAMES, CocoDataset
from inference.data.coco import mask_to_rle
from inference.evaluation import class_prf, confusion_matrix, evaluate_predictions

# pycocotools 2.0 on numpy 2 warns on every mask decode
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


H, W = 80, 100


def _square(y, x, s=12):
    m = np.zeros((H, W), bool)
    m[y:y + s, x:x + s] = True
    return m


def _dataset(cells):
    """cells: per image a list of (class index, mask)."""
    records, aid = [], 0
    for i, anns in enumerate(cells):
        rec_anns = []
        for c, m in anns:
            aid += 1
            ys, xs = np.nonzero(m)
            rec_anns.append({"id": aid, "category_id": c, "segmentation": mask_to_rle(m), "iscrowd": 0,
                             "area": float(m.sum()), "extra": {},
                             "bbox": [float(xs.min()), float(ys.min()), float(np.ptp(xs) + 1), float(np.ptp(ys) + 1)]})
        records.append({"file_name": f"im{i}.png", "image_id": i + 1, "height": H, "width": W, "um_per_px": 0.25,
                        "patient_id": None, "extra": {}, "annotations": rec_anns})
    return CocoDataset(records, CLASS_NAMES)


def _pred(items):
    """items: (class index, mask, score)."""
    out = {"rles": [], "classes": [], "scores": [], "boxes": []}
    for c, m, s in items:
        ys, xs = np.nonzero(m)
        out["rles"].append(mask_to_rle(m))
        out["classes"].append(c)
        out["scores"].append(s)
        out["boxes"].append([float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)])
    return out


def test_perfect_predictions_give_ap_1_and_perfect_clinic_figures(tmp_path):
    cells = [[(0, _square(5, 5)), (0, _square(40, 60)), (4, _square(5, 60))], [(1, _square(30, 30, 20))]]
    ds = _dataset(cells)
    preds = {i + 1: _pred([(c, m, 0.9) for c, m in anns]) for i, anns in enumerate(cells)}
    m = evaluate_predictions(ds, preds, output_dir=str(tmp_path))
    for t in ("bbox", "segm"):
        assert m[t]["AP"] == pytest.approx(1.0)
        assert m[t]["AP50"] == pytest.approx(1.0) and m[t]["AP75"] == pytest.approx(1.0)
        assert m[t]["per_class"]["round_spermatid"]["AP"] == pytest.approx(1.0)
        assert np.isnan(m[t]["per_class"]["leukocyte"]["AP"])  # no ground truth of that class
    assert (m["target"]["precision"], m["target"]["recall"], m["target"]["f1"]) == (1.0, 1.0, 1.0)
    cm = np.array(m["confusion_matrix"]["matrix"])
    assert cm[0, 0] == 2 and cm[4, 4] == 1 and cm[1, 1] == 1 and cm.sum() == 4
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["segm"]["per_class"]["leukocyte"]["AP"] is None
    png = tmp_path / "pr_curve_round_spermatid.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "confusion_matrix.csv").read_text().startswith("true\\predicted,round_spermatid")


def test_known_precision_recall_curve_gives_known_ap():
    # two round spermatids; detections by score: hit (0.9), miss (0.8), hit (0.7).
    # COCO's interpolated precision is 1 up to recall 0.5 and 2/3 up to recall 1:
    # AP = (51 * 1 + 50 * 2/3) / 101 over the 101 recall points, at every IoU threshold.
    a, b = _square(5, 5), _square(40, 60)
    ds = _dataset([[(0, a), (0, b)]])
    preds = {1: _pred([(0, a, 0.9), (0, _square(5, 40), 0.8), (0, b, 0.7)])}
    m = evaluate_predictions(ds, preds, score_thresh=0.75)
    expected = (51 + 50 * 2 / 3) / 101
    assert m["segm"]["per_class"]["round_spermatid"]["AP"] == pytest.approx(expected, abs=1e-6)
    assert m["bbox"]["AP50"] == pytest.approx(expected, abs=1e-6)
    # at score >= 0.75 one hit, one false positive, one missed cell
    t = m["target"]
    assert (t["tp"], t["fp"], t["fn"]) == (1, 1, 1)
    assert t["precision"] == pytest.approx(0.5) and t["recall"] == pytest.approx(0.5) and t["f1"] == pytest.approx(0.5)


def test_a_half_overlapping_mask_counts_at_iou_50_but_not_75():
    gt = _square(10, 10, 20)
    shifted = _square(10, 14, 20)  # IoU = 16*20 / (24*20) = 0.667
    ds = _dataset([[(0, gt)]])
    m = evaluate_predictions(ds, {1: _pred([(0, shifted, 0.9)])})
    pc = m["segm"]["per_class"]["round_spermatid"]
    assert pc["AP50"] == pytest.approx(1.0) and pc["AP75"] == pytest.approx(0.0)
    assert pc["AP"] == pytest.approx(0.4)  # thresholds 0.50, 0.55, 0.60, 0.65 of ten


def test_confusion_matrix_counts_swaps_background_and_misses():
    rs, ery, leuko = _square(5, 5), _square(5, 40), _square(40, 40)
    images = [{"gt_rles": [mask_to_rle(x) for x in (rs, ery, leuko)], "gt_classes": [0, 4, 5],
               # an erythrocyte called a round spermatid, the same cell again as erythrocyte (lower score,
               # dropped as a duplicate), a detection on no cell, and the leukocyte missed
               "pred_rles": [mask_to_rle(x) for x in (rs, ery, ery, _square(60, 80, 10))],
               "pred_classes": [0, 0, 4, 1], "scores": [0.9, 0.8, 0.6, 0.7]}]
    for im in images:
        im["gt_rles"] = [{"size": r["size"], "counts": r["counts"].encode()} for r in im["gt_rles"]]
        im["pred_rles"] = [{"size": r["size"], "counts": r["counts"].encode()} for r in im["pred_rles"]]
    cm = confusion_matrix(images, 6, score_thresh=0.5)
    assert cm[0, 0] == 1          # hRS found
    assert cm[4, 0] == 1          # erythrocyte taken for an hRS: the confusion a clinic cares about
    assert cm[6, 1] == 1          # background detection
    assert cm[5, 6] == 1          # leukocyte missed
    assert cm.sum() == 4
    prf = class_prf(images, 0, 0.5)
    assert (prf["tp"], prf["fp"], prf["fn"]) == (1, 1, 0)


def test_no_predictions_give_zero_ap_and_zero_recall():
    ds = _dataset([[(0, _square(5, 5))]])
    m = evaluate_predictions(ds, {})
    assert m["segm"]["AP"] == 0.0 and m["target"]["recall"] == 0.0
    assert np.isnan(m["segm"]["per_class"]["leukocyte"]["AP"])  # no ground truth of that class either
