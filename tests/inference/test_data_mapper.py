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
    RandomPhotometric,
    RandomRotate90,
    ResizeShortestEdge,
    Sample,
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
    for aug in (RandomPhotometric((1.2, 1.2), (0.8, 0.8), (1.1, 1.1)), RandomDefocus((1.0, 1.0), prob=1.0)):
        s = aug(s0, np.random.default_rng(0))
        assert s.image.dtype == np.uint8 and s.image.shape == s0.image.shape
        assert not np.array_equal(s.image, s0.image)
        assert s.boxes is s0.boxes and s.masks is s0.masks


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
