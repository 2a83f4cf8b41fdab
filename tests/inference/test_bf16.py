"""The optional bf16 CPU mode: off unless asked for (detectron2 configs stay exact fp32), and close to
fp32 where the CPU computes bf16 natively."""
from pathlib import Path

import numpy as np
import pytest
import torch

from inference.bundle import load_bundle
from inference.config import get_cfg
from inference.predictor import Bf16Backbone, cpu_has_native_bf16
from inference.synth.generator import FieldOptions, render_field

DEMO = Path(__file__).resolve().parents[2] / "inference" / "assets" / "demo_model"


def test_bf16_is_off_by_default_and_for_detectron2_configs():
    assert get_cfg().TEST.CPU_BF16 is False
    predictor = load_bundle(DEMO).predictor()
    assert predictor.bf16 is bool(predictor.cfg.TEST.CPU_BF16 and cpu_has_native_bf16())
    assert isinstance(predictor.model.backbone, Bf16Backbone) == predictor.bf16


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16 (avx512_bf16 / amx_bf16)")
def test_bf16_finds_the_same_cells_as_fp32():
    torch.set_num_threads(2)
    bundle = load_bundle(DEMO)
    fp32, bf16 = bundle.predictor(bf16=False), bundle.predictor(bf16=True)
    assert bf16.bf16 and isinstance(bf16.model.backbone, Bf16Backbone) and not fp32.bf16
    rgb, um, _ = render_field(np.random.default_rng(4), FieldOptions(), um_per_px=0.24)
    a, b = fp32.predict(rgb, um_per_px=um), bf16.predict(rgb, um_per_px=um)
    confident = a.scores > 0.5
    assert b.boxes.dtype == np.float32 and b.scores.dtype == np.float32
    for box, cls in zip(a.boxes[confident], a.class_ids[confident]):
        ix = np.clip(np.minimum(box[2], b.boxes[:, 2]) - np.maximum(box[0], b.boxes[:, 0]), 0, None)
        iy = np.clip(np.minimum(box[3], b.boxes[:, 3]) - np.maximum(box[1], b.boxes[:, 1]), 0, None)
        inter = ix * iy
        union = (box[2] - box[0]) * (box[3] - box[1]) + (b.boxes[:, 2] - b.boxes[:, 0]) * (b.boxes[:, 3] - b.boxes[:, 1])
        iou = inter / (union - inter)
        j = int(np.argmax(iou))
        assert iou[j] > 0.9 and b.class_ids[j] == cls
