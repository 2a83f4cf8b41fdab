"""Predictor API: input conversion, bad input, result fields, measurements, COCO helpers, tiling, CLI."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from inference.config import get_cfg
from inference.layers import batched_nms
from inference.measure import measure
from inference.modeling import build_model
from inference.pixels import shortest_edge_size
from inference.predictor import Predictor, load_image_rgb
from inference.tiling import predict_tiled, tile_windows


def tiny_cfg():
    cfg = get_cfg()
    cfg.merge_from_list([
        "MODEL.MASK_ON", "True", "MODEL.BACKBONE.NAME", "build_resnet_fpn_backbone",
        "MODEL.RESNETS.OUT_FEATURES", "[res2, res3, res4, res5]", "MODEL.RESNETS.STEM_OUT_CHANNELS", "8",
        "MODEL.RESNETS.RES2_OUT_CHANNELS", "16", "MODEL.RESNETS.WIDTH_PER_GROUP", "4",
        "MODEL.FPN.IN_FEATURES", "[res2, res3, res4, res5]", "MODEL.FPN.OUT_CHANNELS", "16",
        "MODEL.ANCHOR_GENERATOR.SIZES", "[[16], [32], [64], [128], [256]]",
        "MODEL.RPN.IN_FEATURES", "[p2, p3, p4, p5, p6]", "MODEL.RPN.PRE_NMS_TOPK_TEST", "300",
        "MODEL.RPN.POST_NMS_TOPK_TEST", "100", "MODEL.ROI_HEADS.IN_FEATURES", "[p2, p3, p4, p5]",
        "MODEL.ROI_HEADS.NUM_CLASSES", "2", "MODEL.ROI_HEADS.NAME", "CascadeROIHeads",
        "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0", "MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG", "True",
        "MODEL.ROI_BOX_HEAD.NAME", "FastRCNNConvFCHead", "MODEL.ROI_BOX_HEAD.NUM_FC", "2",
        "MODEL.ROI_BOX_HEAD.FC_DIM", "32", "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION", "7",
        "MODEL.ROI_MASK_HEAD.NUM_CONV", "1", "MODEL.ROI_MASK_HEAD.CONV_DIM", "8",
        "INPUT.MIN_SIZE_TEST", "96", "INPUT.MAX_SIZE_TEST", "160", "TEST.DETECTIONS_PER_IMAGE", "10",
    ])
    return cfg


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    cfg = tiny_cfg()
    path = tmp_path_factory.mktemp("w") / "tiny.pth"
    torch.save({"model": build_model(cfg).state_dict()}, path)
    return Predictor(cfg, path, class_names=["round_spermatid", "erythrocyte"])


def test_input_conversion():
    rgb = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    assert load_image_rgb(rgb) is not None and load_image_rgb(rgb).shape == (40, 50, 3)
    gray = load_image_rgb(rgb[:, :, 0])
    assert gray.shape == (40, 50, 3) and np.array_equal(gray[:, :, 1], rgb[:, :, 0])
    rgba = np.dstack([rgb, np.full((40, 50), 7, np.uint8)])
    assert np.array_equal(load_image_rgb(rgba), rgb)
    img16 = rgb[:, :, 0].astype(np.uint16) * 257  # the same field as 16-bit
    out = load_image_rgb(img16)
    assert out.dtype == np.uint8 and np.array_equal(out[:, :, 0], rgb[:, :, 0])
    with pytest.raises(ValueError, match="too small"):
        load_image_rgb(np.zeros((10, 50, 3), np.uint8))
    with pytest.raises(ValueError, match="HxWx3"):
        load_image_rgb(np.zeros((20, 20, 5), np.uint8))


def test_input_from_paths(tmp_path):
    arr = (np.arange(30 * 40).reshape(30, 40) % 256).astype(np.uint8)
    Image.fromarray(arr).save(tmp_path / "g.png")
    Image.fromarray(np.dstack([arr, arr, arr, arr])).save(tmp_path / "a.png")
    Image.fromarray(arr.astype(np.uint16) * 200).save(tmp_path / "s16.png")
    for name in ("g.png", "a.png", "s16.png"):
        out = load_image_rgb(tmp_path / name)
        assert out.shape == (30, 40, 3) and out.dtype == np.uint8
    (tmp_path / "bad.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot read"):
        load_image_rgb(tmp_path / "bad.png")


def test_resize_rounding_like_detectron2():
    assert shortest_edge_size(512, 640, 512, 1000) == (512, 640)
    assert shortest_edge_size(512, 640, 800, 1333) == (800, 1000)
    assert shortest_edge_size(333, 500, 800, 1333) == (800, 1201)
    assert shortest_edge_size(100, 1000, 800, 1333) == (133, 1333)


def test_predict_result_fields(tiny):
    img = np.random.default_rng(1).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    res = tiny.predict(img, um_per_px=0.25)
    n = len(res)
    assert n == 10
    assert res.boxes.shape == (n, 4) and res.boxes.dtype == np.float32
    assert res.scores.shape == (n,) and res.class_ids.dtype == np.int64
    assert res.masks.shape == (n, 90, 120) and res.masks.dtype == bool
    assert set(res.class_names) <= {"round_spermatid", "erythrocyte"}
    assert (res.boxes[:, 2] <= 120).all() and (res.boxes[:, 3] <= 90).all()
    assert res.centroid_um.shape == (n, 2)
    d = res.to_dict()
    json.dumps(d)
    coco = res.to_coco_results(7)
    assert len(coco) == n and coco[0]["image_id"] == 7 and coco[0]["category_id"] in (1, 2)
    assert len(res.masks_rle()) == n
    no_scale = tiny.predict(img)
    assert no_scale.centroid_um is None and np.isnan(no_scale.diameter_um).all()
    batch = tiny.predict_batch([img, img[:64, :80]], um_per_px=[0.2, None])
    assert batch[1].masks.shape[1:] == (64, 80) and batch[0].um_per_px == 0.2
    np.testing.assert_allclose(batch[0].scores, res.scores, atol=1e-4)


def test_measurements_by_hand():
    m = np.zeros((1, 20, 30), bool)
    m[0, 2:6, 10:20] = True  # 4 x 10 = 40 px
    r = measure(m, um_per_px=0.5)
    assert r["area_px"][0] == 40 and r["area_um2"][0] == pytest.approx(10.0)
    assert r["diameter_um"][0] == pytest.approx(2 * np.sqrt(40 / np.pi) * 0.5)
    np.testing.assert_allclose(r["centroid_px"][0], [15.0, 4.0])
    np.testing.assert_allclose(r["centroid_um"][0], [7.5, 2.0])
    with pytest.raises(ValueError):
        measure(m, um_per_px=-1)


def test_an_empty_mask_takes_its_centroid_from_the_box():
    m = np.zeros((2, 20, 30), bool)
    m[0, 2:6, 10:20] = True
    boxes = np.array([[10, 2, 20, 6], [3, 4, 5, 8]], dtype=np.float32)
    r = measure(m, um_per_px=0.5, boxes=boxes)
    np.testing.assert_allclose(r["centroid_px"], [[15.0, 4.0], [4.0, 6.0]])
    assert r["area_px"][1] == 0 and r["diameter_um"][1] == 0
    assert np.isnan(measure(m)["centroid_px"][1]).all()  # without boxes there is no centroid to give


def test_batched_nms_matches_torchvision():
    from torchvision.ops import batched_nms as tv

    g = torch.Generator().manual_seed(0)
    xy = torch.rand(6000, 2, generator=g) * 300
    boxes = torch.cat([xy, xy + torch.rand(6000, 2, generator=g) * 60 + 1], dim=1)
    scores = torch.rand(6000, generator=g)
    idxs = torch.randint(0, 30, (6000,), generator=g)
    assert torch.equal(batched_nms(boxes, scores, idxs, 0.5), tv(boxes, scores, idxs, 0.5))


def _disc_scene():
    h, w = 300, 420
    yy, xx = np.mgrid[:h, :w]
    discs = [(40, 40, 9), (60, 120, 10), (150, 96, 10), (120, 200, 8), (250, 300, 10), (100, 330, 40), (200, 220, 12)]
    truth = np.stack([(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r for cy, cx, r in discs])
    img = np.zeros((h, w, 3), np.uint8)
    img[truth.any(0)] = 255
    return img, truth


def _fake_infer(tiles):
    """A 'detector' that reports each connected bright blob of a tile as one instance."""
    from scipy import ndimage

    out = []
    for t in tiles:
        lab, n = ndimage.label(t[:, :, 0] > 0)
        masks = np.stack([lab == i + 1 for i in range(n)]) if n else np.zeros((0,) + t.shape[:2], bool)
        boxes = []
        for m in masks:
            ys, xs = np.nonzero(m)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        out.append((np.asarray(boxes, np.float32).reshape(-1, 4), np.linspace(0.9, 0.5, n).astype(np.float32),
                    np.zeros(n, np.int64), masks))
    return out


def test_tiling_merges_cells_cut_at_borders():
    img, truth = _disc_scene()
    wins = tile_windows(300, 420, 128, 40)
    assert len(wins) > 4 and wins[-1][2:] == (300, 420)
    boxes, scores, classes, masks = predict_tiled(_fake_infer, img, tile_size=128, tile_overlap=40)
    assert len(scores) == len(truth), f"{len(scores)} instances for {len(truth)} cells"
    for t in truth:
        ious = [(t & m).sum() / (t | m).sum() for m in masks.dense()]
        assert max(ious) > 0.97
    assert masks.dense().shape == (len(truth), 300, 420)


def test_predictor_tiling_full_image_coordinates(tiny):
    img = np.random.default_rng(2).integers(0, 256, (150, 260, 3), dtype=np.uint8)
    res = tiny.predict(img, tile_size=128, tile_overlap=32)
    assert res.masks.shape[1:] == (150, 260)
    assert (res.boxes[:, 2] <= 260).all() and (res.boxes[:, 3] <= 150).all()


def test_cli_predict(tiny, tmp_path):
    import argparse

    from inference.cli import predict as cli

    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(tiny.cfg.dump())
    weights = tmp_path / "w.pth"
    torch.save({"model": build_model(tiny.cfg).state_dict()}, weights)
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (64, 80, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    ap = argparse.ArgumentParser()
    cli.add_arguments(ap)
    out = tmp_path / "preds.json"
    args = ap.parse_args(["--config", str(cfg_path), "--weights", str(weights), str(tmp_path / "a.png"),
                          "--out", str(out), "--um-per-px", "0.2"])
    assert cli.run(args) == 0
    preds = json.loads(out.read_text())
    assert preds and {"image_id", "category_id", "bbox", "score", "segmentation", "diameter_um"} <= set(preds[0])
    assert preds[0]["scale_status"] == "model_unscaled"  # the tiny config states no pixel size


def test_fixture_rgb_and_bgr_paths_agree(shared_fixtures):
    """predict() takes RGB and converts to INPUT.FORMAT (BGR) itself."""
    fixture = shared_fixtures / "detectron2_cascade_small"
    rgb = np.asarray(Image.open(fixture / "images" / "test_0001.png").convert("RGB"))
    pred = Predictor(fixture / "config.yaml", fixture / "model_final.pth")
    a = pred.predict(rgb)
    b = pred.predict(Image.open(fixture / "images" / "test_0001.png"))
    np.testing.assert_allclose(a.scores, b.scores)
    exp = json.loads((fixture / "expected.json").read_text())["detections"][1]
    assert len(a) == len(exp["scores"])
