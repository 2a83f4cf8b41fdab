"""Execution policy: applied from outside the model, every choice set and undone, same predictions."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from inference.bundle import load_bundle
from inference.engine.execution import ExecutionPolicy, apply_execution_policy
from inference.layers import Conv2d, threaded_ops_enabled
from inference.modeling.poolers import ROIPooler
from inference.predictor import Predictor

DEMO_BUNDLE = Path(__file__).resolve().parents[2] / "inference" / "assets" / "demo_model"
ALL_ON = ExecutionPolicy(channels_last=True, nnpack=True, separable_roi_align=True, threaded_ops=True)


@pytest.fixture(autouse=True)
def restore_threaded_ops():
    before = threaded_ops_enabled()
    yield
    from inference.layers import set_threaded_ops

    set_threaded_ops(before)


def _state(model: torch.nn.Module) -> dict:
    convs = [m for m in model.modules() if isinstance(m, Conv2d)]
    poolers = [m for m in model.modules() if isinstance(m, ROIPooler)]
    four_d = [p for p in model.parameters() if p.dim() == 4]
    return {
        "channels_last": {p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
                          for p in four_d if p.shape[1] > 1 and p.shape[2] * p.shape[3] > 1},
        "nnpack": {m.use_nnpack for m in convs},
        "separable": {m.use_separable_roi_align for m in poolers},
        "threads": threaded_ops_enabled(),
        "poolers": len(poolers),
    }


def test_a_policy_sets_every_choice_and_the_plain_policy_undoes_it():
    demo = load_bundle(DEMO_BUNDLE)
    predictor = Predictor(demo.config_path, demo.weights_path, execution=ALL_ON)
    model = predictor.model
    assert _state(model) == {"channels_last": {True}, "nnpack": {True}, "separable": {True}, "threads": True,
                             "poolers": 2}
    apply_execution_policy(model, ExecutionPolicy())
    assert _state(model) == {"channels_last": {False}, "nnpack": {False}, "separable": {False}, "threads": False,
                             "poolers": 2}


def test_the_model_itself_holds_no_execution_switches():
    from inference.modeling.meta_arch.rcnn import GeneralizedRCNN

    for name in ("set_channels_last", "set_nnpack", "channels_last", "_roi_features", "_backbone"):
        assert not hasattr(GeneralizedRCNN, name), name


def test_every_policy_predicts_the_same_instances():
    from inference.synth.generator import FieldOptions, render_field

    demo = load_bundle(DEMO_BUNDLE)
    rgb, um, _ = render_field(np.random.default_rng(7), FieldOptions(height=384, width=480, cells=(8, 12)))
    plain = Predictor(demo.config_path, demo.weights_path, execution=ExecutionPolicy()).predict(rgb)
    assert len(plain) > 3
    for policy in (ALL_ON, ExecutionPolicy.for_inference("cpu"), ExecutionPolicy(separable_roi_align=True),
                   ExecutionPolicy(channels_last=True, threaded_ops=True)):
        got = Predictor(demo.config_path, demo.weights_path, execution=policy).predict(rgb)
        assert np.array_equal(got.class_ids, plain.class_ids), policy
        np.testing.assert_allclose(got.boxes, plain.boxes, atol=1e-2)
        np.testing.assert_allclose(got.scores, plain.scores, atol=1e-4)
        assert (got.masks != plain.masks).mean() < 1e-4


def test_the_trainer_applies_the_training_policy_once(tmp_path):
    from inference.config import load_config
    from inference.engine import Trainer
    from inference.modeling import build_model

    model = build_model(load_config(load_bundle(DEMO_BUNDLE).config_path))
    trainer = Trainer(model, [], torch.optim.SGD(model.parameters(), lr=0.0), max_iter=0)
    assert trainer.execution == ExecutionPolicy.for_training("cpu")
    assert _state(model)["channels_last"] == {True} and _state(model)["threads"] is True
    plain = Trainer(model, [], torch.optim.SGD(model.parameters(), lr=0.0), max_iter=0, execution=ExecutionPolicy())
    assert plain.execution == ExecutionPolicy() and _state(model)["channels_last"] == {False}
