"""Augmentations keep boxes and masks together; the mapper builds detectron2-style inputs; the
training stream is deterministic and resumable."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from inference.data.mapper import DatasetMapper, TrainingBatches
from inference.data.transforms import (
    RandomDefocus,
    RandomFlip,
    RandomGrayscale,
    RandomIllumination,
    RandomJPEG,
    RandomNoise,
    RandomPhotometric,
    RandomRotate90,
    RandomWhiteBalance,
    ResizeShortestEdge,
    ResizeToPixelSize,
    Sample,
    boxes_of_masks,
    shortest_edge_size,
)
from inference.synth import FieldOptions, generate_dataset

# pycocotools 2.0 on numpy 2 warns on every mask decode
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")



def _sample():
    h, w = 40, 60
    img = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    masks = np.zeros((2, h, w), bool)
    masks[0, 5:15, 10:30] = True
    masks[1, 20:38, 40:52] = True
    boxes = np.array([[10, 5, 30, 15], [40, 20, 52, 38]], np.float32)
    return Sample(img, boxes, masks)


def _boxes_of(masks):
    out = []
    for m in masks:
        ys, xs = np.nonzero(m)
        out.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return np.array(out, np.float32)


@pytest.mark.parametrize("aug", [RandomFlip(1.0, horizontal=True), RandomFlip(1.0, horizontal=False, vertical=True),
                                 RandomRotate90(1.0)])
def test_geometric_augmentations_move_boxes_with_masks(aug):
    for seed in range(4):
        s = aug(_sample(), np.random.default_rng(seed))
        np.testing.assert_allclose(s.boxes, _boxes_of(s.masks))
        assert s.image.shape[:2] == s.masks.shape[1:]


def test_resize_shortest_edge_rounds_like_detectron2():
    assert shortest_edge_size(512, 640, 512, 800) == (512, 640)
    assert shortest_edge_size(480, 640, 512, 800) == (512, 683)
    assert shortest_edge_size(100, 1000, 512, 800) == (80, 800)
    s = ResizeShortestEdge([80], 1000)(_sample(), np.random.default_rng(0))
    assert s.image.shape == (80, 120, 3) and s.masks.shape == (2, 80, 120)
    np.testing.assert_allclose(s.boxes, _boxes_of(s.masks), atol=1)
    lengths = {ResizeShortestEdge([30, 50], 1000, "range")(_sample(), np.random.default_rng(i)).image.shape[0]
               for i in range(30)}
    assert min(lengths) >= 30 and max(lengths) <= 50 and len(lengths) > 5


def test_photometric_and_defocus_change_pixels_only():
    s0 = _sample()
    s0.um_per_px = 0.25
    for aug in (RandomPhotometric((1.2, 1.2), (0.8, 0.8), (1.1, 1.1)), RandomDefocus((1.0, 1.0), prob=1.0),
                RandomIllumination(0.4, (0.2, 0.3)), RandomWhiteBalance((0.8, 1.2)), RandomGrayscale(1.0),
                RandomNoise((3.0, 6.0)), RandomJPEG((30, 40))):
        s = aug(s0, np.random.default_rng(0))
        assert s.image.dtype == np.uint8 and s.image.shape == s0.image.shape
        assert not np.array_equal(s.image, s0.image), type(aug).__name__
        assert s.boxes is s0.boxes and s.masks is s0.masks and s.um_per_px == 0.25


def test_photometric_augmentations_do_what_they_say():
    flat = Sample(np.full((50, 80, 3), 150, np.uint8), np.zeros((0, 4), np.float32), np.zeros((0, 50, 80), bool))
    rng = np.random.default_rng(3)
    lit = RandomIllumination(0.4, (0.0, 0.0))(flat, rng).image.astype(float)
    assert lit.std() > 3 and abs(lit.mean() - 150) < 3          # a gradient around the same level
    wb = RandomWhiteBalance((0.8, 1.2))(flat, rng).image.reshape(-1, 3)
    assert len(np.unique(wb, axis=0)) == 1 and len(set(wb[0])) == 3   # per-channel gains, uniform over the image
    colour = _sample()
    gray = RandomGrayscale(1.0)(colour, rng).image
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
    noisy = RandomNoise((4.0, 4.0))(flat, rng).image.astype(float)
    assert 2.0 < noisy.std() < 6.0 and abs(noisy.mean() - 150) < 1
    assert RandomNoise((4.0, 4.0), prob=0.0)(flat, rng) is flat
    smooth = np.tile(np.linspace(60, 200, 80, dtype=np.float32), (50, 1)).astype(np.uint8)
    grad = Sample(np.repeat(smooth[..., None], 3, axis=2), flat.boxes, flat.masks)
    jpeg = RandomJPEG((20, 20))(grad, rng).image.astype(float)
    assert 0 < np.abs(jpeg - grad.image).mean() < 6               # lossy, but the same picture


def test_resize_to_pixel_size_brings_every_image_to_the_model_scale_and_crops():
    s0 = _sample()                       # 40 x 60 px
    s0.um_per_px = 0.5
    s = ResizeToPixelSize(0.25)(s0, np.random.default_rng(0))     # twice the pixels, no crop
    assert s.image.shape == (80, 120, 3) and s.masks.shape == (2, 80, 120) and s.um_per_px == 0.25
    np.testing.assert_allclose(s.boxes, 2 * s0.boxes, atol=1)
    fine = Sample(s0.image, s0.boxes, s0.masks, 0.125)             # the same field at 4x finer pixels
    assert ResizeToPixelSize(0.25)(fine, np.random.default_rng(0)).image.shape == (20, 30, 3)
    sizes = set()
    for seed in range(20):
        c = ResizeToPixelSize(0.25, jitter=(0.9, 1.1), crop=(50, 70))(s0, np.random.default_rng(seed))
        assert c.image.shape[:2] == c.masks.shape[1:] and c.image.shape[0] <= 50 and c.image.shape[1] <= 70
        assert 0.225 <= c.um_per_px <= 0.275
        np.testing.assert_array_equal(c.boxes, boxes_of_masks(c.masks))  # cut cells: box of the visible part
        sizes.add(c.image.shape[:2])
    assert (50, 70) in sizes
    with pytest.raises(ValueError, match="um_per_px"):
        ResizeToPixelSize(0.25)(_sample(), np.random.default_rng(0))


def test_config_switches_on_physical_scale_and_each_augmentation():
    from inference.data.mapper import build_augmentations
    from inference.engine.defaults import get_training_cfg

    cfg = get_training_cfg()
    assert [type(a).__name__ for a in build_augmentations(cfg, True)] == ["ResizeShortestEdge", "RandomFlip"]
    a = cfg.INPUT.AUGMENT
    a.ILLUMINATION_PROB = a.WHITE_BALANCE_PROB = a.GRAYSCALE_PROB = a.DEFOCUS_PROB = a.NOISE_PROB = a.JPEG_PROB = 0.5
    cfg.INPUT.PHYSICAL_SCALE.ENABLED = True
    with pytest.raises(ValueError, match="UM_PER_PX"):
        build_augmentations(cfg, True)
    cfg.INPUT.UM_PER_PX = 0.25
    augs = build_augmentations(cfg, True)
    assert [type(x).__name__ for x in augs] == [
        "ResizeToPixelSize", "RandomFlip", "RandomIllumination", "RandomWhiteBalance", "RandomGrayscale",
        "RandomDefocus", "RandomNoise", "RandomJPEG"]
    assert augs[0].um_per_px == 0.25 and augs[0].crop == (512, 640)
    assert [type(x).__name__ for x in build_augmentations(cfg, False)] == ["ResizeShortestEdge"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from inference.data import load_coco

    out = tmp_path_factory.mktemp("mapper_synth")
    generate_dataset(str(out), seed=1, splits={"train": 3},
                     opts=FieldOptions(height=64, width=96, um_per_px=(0.6, 0.7), cells=(3, 5), debris=(0, 1)))
    return load_coco(str(out / "train.json"))


def test_mapper_builds_detectron2_inputs(tiny):
    from inference.structures import BitMasks, Boxes

    rec = tiny.records[0]
    mapper = DatasetMapper(is_train=True, augmentations=[ResizeShortestEdge([128], 1000), RandomFlip(0.5)],
                           image_format="BGR")
    out = mapper(rec, sample_index=0)
    img = out["image"]
    assert img.shape == (3, 128, 192) and img.dtype == torch.uint8
    assert (out["height"], out["width"]) == (64, 96)
    inst = out["instances"]
    assert inst.image_size == (128, 192)
    assert isinstance(inst.gt_boxes, Boxes) and isinstance(inst.gt_masks, BitMasks)
    assert inst.gt_masks.tensor.shape[1:] == (128, 192) and inst.gt_classes.dtype == torch.int64
    assert len(inst) == len(rec["annotations"])
    from_masks = inst.gt_masks.get_bounding_boxes().tensor
    assert torch.allclose(from_masks, inst.gt_boxes.tensor, atol=2.5)
    # BGR: channel 0 of the tensor is the blue channel of the file
    from PIL import Image
    rgb = np.asarray(Image.open(rec["file_name"]).convert("RGB"))
    test = DatasetMapper(is_train=False, augmentations=[ResizeShortestEdge([64], 1000)], image_format="BGR")(rec)
    assert np.array_equal(test["image"].numpy()[0], rgb[:, :, 2]) and "instances" not in test


def test_mapper_gives_the_record_pixel_size_to_physical_scale_training(tiny):
    rec = tiny.records[0]
    mapper = DatasetMapper(is_train=True, augmentations=[ResizeToPixelSize(rec["um_per_px"] / 2)])
    out = mapper(rec, sample_index=0)
    assert out["image"].shape[1:] == (128, 192) and out["instances"].image_size == (128, 192)
    assert len(out["instances"]) == len(rec["annotations"])


def test_training_stream_is_deterministic_and_resumes_where_it_stopped(tiny):
    mapper = DatasetMapper(is_train=True, augmentations=[RandomRotate90(1.0), RandomPhotometric(prob=1.0)], seed=5)
    full = TrainingBatches(tiny.records, mapper, batch_size=2, seed=5)
    first = [b for _, b in zip(range(6), iter(full))]
    resumed = [b for _, b in zip(range(3), iter(TrainingBatches(tiny.records, mapper, batch_size=2, seed=5, start_batch=3)))]
    for a, b in zip(first[3:], resumed):
        assert [x["image_id"] for x in a] == [x["image_id"] for x in b]
        for x, y in zip(a, b):
            assert torch.equal(x["image"], y["image"])
    # every record is seen once per epoch-sized span of the stream
    plan = full.batch_plan(3)
    seen = [code % len(tiny.records) for batch in plan for code in batch]
    assert sorted(seen[:3]) == [0, 1, 2]
