"""Model card figures and the promotion gate's statistics, on hand-made COCO ground truth and results."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from inference.evaluation.coco_eval import coco_evaluate
from inference.evaluation.model_card import (
    ap_from_matches,
    card_metrics,
    match_images,
    paired_bootstrap_ap50_difference,
    per_class_ap_drop,
    promotion_comparison,
)
from inference.labels import CLASS_NAMES

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

H, W = 96, 128
CATEGORIES = [{"id": k + 1, "name": n} for k, n in enumerate(CLASS_NAMES)]


def _disc(cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}


def _bbox(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]


def make_world(n_images: int = 12, seed: int = 0):
    """Ground truth with round spermatids (class 1) and spermatocytes (class 2) on ``n_images`` images
    from two centers at two pixel sizes, and the cells as (image id, category id, mask)."""
    rng = np.random.default_rng(seed)
    images, anns, cells = [], [], []
    for i in range(n_images):
        image_id = i + 1
        images.append({"id": image_id, "file_name": f"im{i}.png", "height": H, "width": W,
                       "um_per_px": 0.22 if i % 2 else 0.35, "center": "A" if i < n_images // 2 else "B"})
        for k in range(4):
            cy, cx = 20 + 50 * (k // 2) + rng.uniform(-3, 3), 25 + 70 * (k % 2) + rng.uniform(-3, 3)
            m = _disc(cy, cx, rng.uniform(8, 12))
            cat = 1 if k < 3 else 2
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cat, "segmentation": _rle(m),
                         "bbox": _bbox(m), "area": float(m.sum()), "iscrowd": 0})
            cells.append((image_id, cat, m))
    return {"images": images, "annotations": anns, "categories": CATEGORIES}, cells


def perfect(cells, score: float = 1.0) -> list[dict]:
    return [{"image_id": i, "category_id": c, "score": score, "bbox": _bbox(m), "segmentation": _rle(m)}
            for i, c, m in cells]


def noisy(cells, seed: int = 1, miss: float = 0.2, false_positives: int = 1) -> list[dict]:
    """Finds most cells with varying scores, misses some, adds low-scored detections on background."""
    rng = np.random.default_rng(seed)
    out = []
    for i, c, m in cells:
        if rng.random() < miss:
            continue
        out.append({"image_id": i, "category_id": c, "score": float(rng.uniform(0.3, 1.0)), "bbox": _bbox(m),
                    "segmentation": _rle(m)})
    image_ids = sorted({i for i, _, _ in cells})
    for i in image_ids:
        for _ in range(false_positives):
            m = _disc(rng.uniform(40, 56), rng.uniform(50, 78), 6)
            out.append({"image_id": i, "category_id": 1, "score": float(rng.uniform(0.05, 0.9)), "bbox": _bbox(m),
                        "segmentation": _rle(m)})
    return out


# -- the card -----------------------------------------------------------------------------------

def test_card_of_a_perfect_model_is_perfect_and_calibrated():
    gt, cells = make_world()
    card = card_metrics(gt=gt, predictions=perfect(cells), class_names=CLASS_NAMES)
    json.dumps(card, allow_nan=False)  # JSON-serialisable, no NaN
    assert card["segm"]["per_class"]["round_spermatid"]["AP50"] == pytest.approx(1.0)
    assert card["bbox"]["per_class"]["spermatocyte"]["AP"] == pytest.approx(1.0)
    assert card["segm"]["per_class"]["leukocyte"]["AP50"] is None  # no ground truth: no figure
    assert card["calibration"]["ece"] == pytest.approx(0.0)
    top = card["calibration"]["bins"][-1]
    assert top["count"] == len(cells) and top["fraction_true_positive"] == 1.0 and top["mean_score"] == 1.0
    cm = np.array(card["confusion_matrix"]["matrix"])
    assert cm.shape == (7, 7)
    assert cm[0, 0] == 36 and cm[1, 1] == 12 and cm.sum() == 48
    assert card["counts"]["round_spermatid"] == {"ground_truth": 36, "predicted": 36}
    assert card["per_center"]["A"]["AP50"] == pytest.approx(1.0) and card["per_center"]["A"]["images"] == 6
    assert set(card["per_pixel_size"]) == {"0.2-0.25", "0.3-0.4"}
    curve = card["pr_curves"]["round_spermatid"]
    assert len(curve["recall"]) == 101 and curve["precision"] == [1.0] * 101


def test_card_reports_misses_false_positives_and_overconfidence():
    gt, cells = make_world()
    preds = noisy(cells)
    card = card_metrics(gt=gt, predictions=preds, class_names=CLASS_NAMES, score_thresh=0.5)
    cm = np.array(card["confusion_matrix"]["matrix"])
    missed_rs = cm[0, -1]
    background_as_rs = cm[-1, 0]
    assert missed_rs > 0 and background_as_rs > 0
    assert 0.0 < card["segm"]["per_class"]["round_spermatid"]["AP50"] < 1.0
    assert card["calibration"]["ece"] > 0.05
    assert sum(b["count"] for b in card["calibration"]["bins"]) == card["calibration"]["detections"] == len(preds)
    # the precision-recall curve never rises with recall (interpolated) and ends where recall is not reached
    p = card["pr_curves"]["round_spermatid"]["precision"]
    assert all(a >= b for a, b in zip(p, p[1:])) and p[-1] == 0.0


def test_its_ap50_is_the_one_pycocotools_computes():
    gt, cells = make_world(n_images=10, seed=3)
    preds = noisy(cells, seed=4, miss=0.3, false_positives=2)
    ids = [c["id"] for c in CATEGORIES]
    coco = coco_evaluate(gt, preds, CLASS_NAMES, ids, iou_types=("segm",))
    for name in ("round_spermatid", "spermatocyte"):
        ours = ap_from_matches(match_images(gt=gt, predictions=preds, class_name=name))
        assert ours == pytest.approx(coco["segm"]["per_class"][name]["AP50"], abs=1e-9), name


def test_card_maps_classes_by_name_not_by_category_id():
    gt, cells = make_world(n_images=4)
    # the same classes with other ids, in another order
    renumber = {1: 11, 2: 5}
    gt2 = json.loads(json.dumps(gt))
    gt2["categories"] = [{"id": 11, "name": "round_spermatid"}, {"id": 5, "name": "spermatocyte"}]
    for a in gt2["annotations"]:
        a["category_id"] = renumber[a["category_id"]]
    preds = [dict(p, category_id=renumber[p["category_id"]]) for p in perfect(cells)]
    card = card_metrics(gt=gt2, predictions=preds, class_names=["spermatocyte", "round_spermatid"])
    assert card["segm"]["per_class"]["round_spermatid"]["AP50"] == pytest.approx(1.0)
    assert card["counts"]["spermatocyte"]["ground_truth"] == 4
    with pytest.raises(ValueError, match="leukocyte"):
        card_metrics(gt=gt2, predictions=preds, class_names=["leukocyte"])


# -- the paired bootstrap -------------------------------------------------------------------------

def test_identical_predictions_differ_by_exactly_zero():
    gt, cells = make_world()
    preds = noisy(cells)
    r = paired_bootstrap_ap50_difference(gt=gt, predictions_a=preds, predictions_b=list(preds), n_boot=300)
    assert r["difference"] == 0.0 and r["low"] == 0.0 and r["high"] == 0.0
    assert r["ap50_a"] == r["ap50_b"] and r["n_images"] == 12


def test_a_model_that_lost_its_detections_gets_a_clearly_negative_interval():
    gt, cells = make_world()
    good = noisy(cells, miss=0.05)
    # the candidate misses every round spermatid on half the images
    worse = [p for p in good if not (p["category_id"] == 1 and p["image_id"] % 2 == 0)]
    r = paired_bootstrap_ap50_difference(gt=gt, predictions_a=good, predictions_b=worse, n_boot=500, seed=1)
    assert r["difference"] < -0.3
    assert r["low"] < r["difference"] < r["high"] < -0.1
    # the other way round it is a clear improvement
    r2 = paired_bootstrap_ap50_difference(gt=gt, predictions_a=worse, predictions_b=good, n_boot=500, seed=1)
    assert r2["low"] > 0.1
    assert r2["difference"] == pytest.approx(-r["difference"])


def test_the_bootstrap_is_reproducible_by_seed_and_resamples_images():
    gt, cells = make_world()
    a, b = noisy(cells, seed=1), noisy(cells, seed=2)
    r1 = paired_bootstrap_ap50_difference(gt=gt, predictions_a=a, predictions_b=b, n_boot=400, seed=5)
    r2 = paired_bootstrap_ap50_difference(gt=gt, predictions_a=a, predictions_b=b, n_boot=400, seed=5)
    r3 = paired_bootstrap_ap50_difference(gt=gt, predictions_a=a, predictions_b=b, n_boot=400, seed=6)
    assert r1 == r2
    assert (r1["low"], r1["high"]) != (r3["low"], r3["high"])
    assert r1["low"] < r1["difference"] < r1["high"]


def test_two_thousand_replicates_on_fifty_images_take_well_under_ten_seconds():
    gt, cells = make_world(n_images=50, seed=9)
    a = noisy(cells, seed=1, false_positives=20)
    b = noisy(cells, seed=2, false_positives=20)
    t0 = time.perf_counter()
    r = paired_bootstrap_ap50_difference(gt=gt, predictions_a=a, predictions_b=b, n_boot=2000)
    elapsed = time.perf_counter() - t0
    assert r["n_boot"] == 2000 and r["n_images"] == 50
    assert elapsed < 10.0, f"{elapsed:.1f} s"


# -- per-class AP and the whole rule ----------------------------------------------------------------

def test_per_class_drop_names_the_class_that_got_worse():
    gt, cells = make_world()
    current = perfect(cells)
    # the candidate finds spermatocytes only half the time
    candidate = [p for p in current if not (p["category_id"] == 2 and p["image_id"] % 2 == 0)]
    r = per_class_ap_drop(gt=gt, predictions_a=current, predictions_b=candidate, class_names=CLASS_NAMES)
    assert not r["passes"] and r["worst_class"] == "spermatocyte" and r["worst_drop"] > 0.3
    assert r["per_class"]["round_spermatid"]["drop"] == pytest.approx(0.0)
    assert r["per_class"]["leukocyte"]["drop"] is None
    same = per_class_ap_drop(gt=gt, predictions_a=current, predictions_b=current, class_names=CLASS_NAMES)
    assert same["passes"]


def test_promotion_comparison_refuses_worse_and_accepts_better():
    gt, cells = make_world()
    current = noisy(cells, seed=1, miss=0.25)
    better = perfect(cells, score=0.9)
    worse = [p for p in current if not (p["category_id"] == 1 and p["image_id"] % 2 == 0)]
    ok = promotion_comparison(gt=gt, predictions_current=current, predictions_candidate=better,
                              class_names=CLASS_NAMES, n_boot=300)
    assert ok["passes"] and ok["reasons"] == []
    bad = promotion_comparison(gt=gt, predictions_current=current, predictions_candidate=worse,
                               class_names=CLASS_NAMES, n_boot=300)
    assert not bad["passes"] and any("round_spermatid AP50" in r for r in bad["reasons"])
    json.dumps(bad, allow_nan=False)
