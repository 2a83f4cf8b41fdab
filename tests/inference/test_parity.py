"""Parity with detectron2's own predictions on the shared fixture (same targets as check_parity.py)."""
import json

import numpy as np
import pytest
import torch
from PIL import Image


@pytest.fixture(scope="module")
def fixture_dir(shared_fixtures):
    return shared_fixtures / "detectron2_cascade_small"


def _box_iou(a, b):
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter + 1e-9)


@pytest.fixture(scope="module")
def predictor(fixture_dir):
    from inference import Predictor

    torch.set_num_threads(2)
    return Predictor(fixture_dir / "config.yaml", fixture_dir / "model_final.pth", device="cpu")


def test_parity_with_detectron2(predictor, fixture_dir):
    from inference.structures import rle_to_masks

    exp = json.loads((fixture_dir / "expected.json").read_text())
    worst = {"box_iou": 1.0, "mask_iou": 1.0, "score_diff": 0.0, "unmatched": 0, "class_mismatch": 0}
    n = 0
    for d in exp["detections"]:
        rgb = np.asarray(Image.open(fixture_dir / "images" / d["file_name"]).convert("RGB"))
        out = predictor.predict(rgb)
        assert out.masks.shape[1:] == (d["height"], d["width"]) and out.masks.dtype == bool
        eb, es, ec = np.asarray(d["boxes_xyxy"]).reshape(-1, 4), np.asarray(d["scores"]), np.asarray(d["classes"])
        em = rle_to_masks(d["masks_rle"], d["height"], d["width"])
        n += len(eb)
        iou = _box_iou(eb, out.boxes)
        used = set()
        for i in np.argsort(-es):
            same = [j for j in range(len(out)) if j not in used and out.class_ids[j] == ec[i] and iou[i, j] >= 0.5]
            if not same:
                if any(j not in used and iou[i, j] >= 0.5 for j in range(len(out))):
                    worst["class_mismatch"] += 1
                elif es[i] > 0.1:
                    worst["unmatched"] += 1
                continue
            j = max(same, key=lambda k: (round(float(iou[i, k]), 4), -abs(float(es[i] - out.scores[k]))))
            used.add(j)
            worst["box_iou"] = min(worst["box_iou"], float(iou[i, j]))
            worst["score_diff"] = max(worst["score_diff"], float(abs(es[i] - out.scores[j])))
            union = np.logical_or(em[i], out.masks[j]).sum()
            worst["mask_iou"] = min(worst["mask_iou"], float(np.logical_and(em[i], out.masks[j]).sum() / union) if union else 1.0)
        worst["unmatched"] += sum(1 for j in range(len(out)) if j not in used and out.scores[j] > 0.1)
    assert n > 0
    assert worst["box_iou"] >= 0.99 and worst["mask_iou"] >= 0.98 and worst["score_diff"] <= 1e-3, worst
    assert worst["unmatched"] == 0 and worst["class_mismatch"] == 0, worst


def test_intermediates_stage_by_stage(fixture_dir):
    """Unfolded model on detectron2's own normalized input: features, proposals and stage outputs agree."""
    from inference.checkpoint import load_checkpoint
    from inference.config import load_config
    from inference.modeling import build_model
    from inference.structures import ImageList

    inter = torch.load(fixture_dir / "intermediates.pt", map_location="cpu", weights_only=True)
    model = build_model(load_config(fixture_dir / "config.yaml"))
    load_checkpoint(model, fixture_dir / "model_final.pth")
    model.eval()
    with torch.no_grad():
        feats = model.backbone(inter["input"])
        for k, v in inter["features"].items():
            torch.testing.assert_close(feats[k], v, atol=2e-3, rtol=1e-3)
        images = ImageList(inter["input"], [tuple(inter["image_size"])])
        proposals, _ = model.proposal_generator(images, feats)
        p = proposals[0]
        iou = _box_iou(inter["proposal_boxes"][:200].numpy(), p.proposal_boxes.tensor[:200].numpy())
        assert (iou.max(axis=1) > 0.99).mean() > 0.99
        # stage 0 on detectron2's proposals
        from inference.structures import Boxes, Instances

        props = Instances(tuple(inter["image_size"]), proposal_boxes=Boxes(inter["proposal_boxes"]))
        heads = model.roi_heads
        logits, deltas = heads._run_stage([feats[f] for f in heads.box_in_features], [props], 0)
        torch.testing.assert_close(logits, inter["stages"][0]["logits"], atol=2e-3, rtol=1e-3)
        torch.testing.assert_close(deltas, inter["stages"][0]["deltas"], atol=2e-3, rtol=1e-3)
