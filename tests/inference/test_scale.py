"""Physical-scale inference: resampling to the model's pixel size, automatic tiling, compact masks,
and the scale status/warning every prediction carries."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inference.bundle import load_bundle
from inference.predictor import SCALE_TOLERANCE, Predictor, model_scale, scale_plan
from inference.structures.cropped_masks import CroppedMasks
from inference.structures.masks import masks_to_rle, paste_masks_in_image, paste_masks_in_windows
from inference.synth.generator import FieldOptions, render_field

DEMO = Path(__file__).resolve().parents[2] / "inference" / "assets" / "demo_model"
ROUND = 0  # round_spermatid


@pytest.fixture(scope="module")
def demo():
    torch.set_num_threads(2)
    return load_bundle(DEMO).predictor()


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def _box_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


# --- the plan -------------------------------------------------------------------------------------
def test_scale_plan_statuses_and_the_tolerance():
    assert scale_plan(None, 0.24, (0.19, 0.3)).status == "unknown"
    assert scale_plan(0.2, None, None).status == "model_unscaled"
    inside = scale_plan(0.3 * SCALE_TOLERANCE * 0.99, 0.24, (0.19, 0.3))
    assert inside.status == "physical" and inside.warning == "" and inside.factor == pytest.approx(inside.factor)
    coarse = scale_plan(0.3 * SCALE_TOLERANCE * 1.01, 0.24, (0.19, 0.3))
    fine = scale_plan(0.19 / SCALE_TOLERANCE / 1.01, 0.24, (0.19, 0.3))
    for plan in (coarse, fine):
        assert plan.status == "out_of_range" and "outside the range" in plan.warning and plan.factor is not None
    assert scale_plan(0.48, 0.24, None).factor == pytest.approx(2.0)
    with pytest.raises(ValueError, match="positive"):
        scale_plan(0.0, 0.24, None)


def test_config_keys_default_to_unknown_and_are_checked(demo):
    from inference.config import get_cfg

    assert model_scale(get_cfg()) == (None, None)
    assert model_scale(demo.cfg) == (0.25138, (0.10066, 0.39734))  # the demo model 0.2.0
    cfg = get_cfg()
    cfg.INPUT.UM_PER_PX = 0.2
    cfg.INPUT.UM_PER_PX_RANGE = [0.3, 0.1]
    with pytest.raises(ValueError, match="UM_PER_PX_RANGE"):
        model_scale(cfg)


def test_a_prediction_says_when_the_scale_was_unknown_or_out_of_range(demo):
    rgb, _, _ = render_field(np.random.default_rng(1), FieldOptions(height=96, width=120, cells=(3, 5)),
                             um_per_px=0.24)
    unknown = demo.predict(rgb)
    assert unknown.scale_status == "unknown" and "unknown" in unknown.scale_warning
    assert unknown.model_um_per_px is None and not unknown.scale_known
    far = demo.predict(rgb, um_per_px=1.0)  # resampled 4x: 382x477 px, still one model input
    assert far.scale_status == "out_of_range" and "0.101–0.397" in far.scale_warning
    ok = demo.predict(rgb, um_per_px=0.24)
    assert ok.scale_status == "physical" and ok.scale_warning == "" and ok.model_um_per_px == 0.25138
    assert demo.predict(rgb, um_per_px=0.24).to_dict(include_masks=False)["scale_status"] == "physical"


# --- resampling -----------------------------------------------------------------------------------
def test_a_finer_image_is_resampled_and_results_come_back_in_its_own_pixels(demo):
    rgb, _, _ = render_field(np.random.default_rng(3), FieldOptions(), um_per_px=0.24)
    native = demo.predict(rgb, um_per_px=0.24)
    k = 1.5  # the same field of view imaged with 1.5x smaller pixels
    fine = np.asarray(Image.fromarray(rgb).resize((int(640 * k), int(512 * k)), Image.BILINEAR))
    pred = demo.predict(fine, um_per_px=0.24 / k)
    assert pred.scale_status == "physical" and pred.tiles == 1
    assert pred.instance_masks.image_size == (768, 960) and pred.masks.shape[1:] == (768, 960)
    keep_n = native.scores > 0.5
    keep_f = pred.scores > 0.5
    assert abs(int(keep_n.sum()) - int(keep_f.sum())) <= 1
    matched = 0
    for i in np.flatnonzero(keep_n):
        ious = [_box_iou(native.boxes[i] * k, pred.boxes[j]) for j in np.flatnonzero(keep_f)]
        j = np.flatnonzero(keep_f)[int(np.argmax(ious))]
        if max(ious) >= 0.8 and pred.class_ids[j] == native.class_ids[i]:
            matched += 1
            # the mask lies where the box is, in the fine image's pixels, and the µm sizes agree
            cx, cy = pred.centroid_px[j]
            assert pred.boxes[j, 0] <= cx <= pred.boxes[j, 2] and pred.boxes[j, 1] <= cy <= pred.boxes[j, 3]
            assert pred.area_px[j] == pytest.approx(native.area_px[i] * k * k, rel=0.15)
            assert pred.diameter_um[j] == pytest.approx(native.diameter_um[i], rel=0.08)
            assert pred.centroid_um[j] == pytest.approx(native.centroid_um[i], abs=0.5)
    assert matched >= 0.9 * keep_n.sum()


# --- tiling ---------------------------------------------------------------------------------------
def test_a_large_field_is_tiled_and_cells_on_tile_borders_are_reported_once(demo):
    from inference.tiling import tile_windows

    h, w = 1100, 1400
    rgb, um, cells = render_field(np.random.default_rng(7), FieldOptions(height=h, width=w, cells=(60, 75)),
                                  um_per_px=0.24)
    pred = demo.predict(rgb, um_per_px=um)
    assert pred.scale_status == "physical" and pred.tiles == len(tile_windows(h, w, demo.tile_side, 84)) > 4
    assert isinstance(pred.instance_masks, CroppedMasks)
    assert sum(c.size for c in pred.instance_masks.crops) < 0.01 * len(pred) * h * w  # no full frames
    keep = np.flatnonzero(pred.scores >= 0.5)
    found = pred.instance_masks.subset(keep)
    boxes, classes = pred.boxes[keep], pred.class_ids[keep]

    def mask_of(i):
        y0, x0, y1, x1 = found.windows[i]
        full = np.zeros((h, w), bool)
        full[y0:y1, x0:x1] = found.crops[i]
        return full

    # the model's tiles (tile_side px at the model's own scale), in image pixels
    from inference.pixels import scaled_size

    fx = um / pred.model_um_per_px
    nh, nw = scaled_size(h, w, fx)
    wins = tile_windows(nh, nw, demo.tile_side, int(np.ceil(20.0 / pred.model_um_per_px)))
    xs = {x / fx for (_, x0, _, x1) in wins for x in (x0, x1) if 0 < x < nw}
    ys = {y / fx for (y0, _, y1, _) in wins for y in (y0, y1) if 0 < y < nh}
    on_border = once = 0
    for name, mask in cells:
        if name in ("spermatozoon", "elongated_spermatid"):  # the demo model's weak classes, cut or not
            continue
        yy, xx = np.nonzero(mask)
        if yy.size < 50 or not (any(xx.min() < x < xx.max() for x in xs) or any(yy.min() < y < yy.max() for y in ys)):
            continue
        on_border += 1
        cell_box = (xx.min(), yy.min(), xx.max() + 1, yy.max() + 1)
        hits = [i for i in range(len(keep)) if _box_iou(cell_box, boxes[i]) > 0.3 and _mask_iou(mask, mask_of(i)) >= 0.5]
        # once per class: tiles are merged per class; a cell the model also calls another class (a
        # leukocyte/spermatocyte look-alike) is that, not a tiling duplicate
        per_class = np.bincount(classes[hits], minlength=1) if hits else np.zeros(1, int)
        assert per_class.max() <= 1, f"a {name} on a tile border was reported {per_class.max()} times"
        once += bool(hits)
    assert on_border >= 5 and once >= 0.8 * on_border
    for i in range(len(keep)):  # no two reports of one cell anywhere
        for j in range(i + 1, len(keep)):
            if classes[i] == classes[j] and _box_iou(boxes[i], boxes[j]) > 0.3:
                assert _mask_iou(mask_of(i), mask_of(j)) < 0.5


# --- compact masks --------------------------------------------------------------------------------
def test_window_pasting_gives_detectron2s_pixels_and_the_same_rle():
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(30, 28, 28, generator=g)
    boxes = torch.rand(30, 4, generator=g) * 150
    boxes[:, 2:] += boxes[:, :2] + 3
    windows, crops = paste_masks_in_windows(probs, boxes, (170, 160))
    full = paste_masks_in_image(probs, boxes, (170, 160)).numpy()
    cropped = CroppedMasks((170, 160), windows, crops)
    assert np.array_equal(cropped.dense(), full)
    assert [r["counts"] for r in cropped.to_rle()] == [r["counts"] for r in masks_to_rle(full)]
    tight = cropped.tight()
    assert np.array_equal(tight.dense(), full) and np.allclose(tight.areas(), full.sum(axis=(1, 2)))


def test_a_config_without_the_scale_keys_keeps_the_fixed_resize(tmp_path):
    from inference.config import load_config

    cfg = load_config(str(DEMO / "config.yaml"))
    cfg.INPUT.UM_PER_PX = 0.0
    cfg.INPUT.UM_PER_PX_RANGE = []
    bundle = load_bundle(DEMO)
    legacy = Predictor(cfg, bundle.weights_path, class_names=bundle.class_names)
    rgb, _, _ = render_field(np.random.default_rng(2), FieldOptions(height=256, width=320), um_per_px=0.24)
    pred = legacy.predict(rgb, um_per_px=0.24)
    assert pred.scale_status == "model_unscaled" and "INPUT.UM_PER_PX" in pred.scale_warning
    assert pred.um_per_px == 0.24 and np.isfinite(pred.diameter_um).all()
