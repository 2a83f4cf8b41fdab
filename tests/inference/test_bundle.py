"""Model bundles: write, load (directory and zip), sha256 check, clear errors, predictor, export CLI."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch

from inference.bundle import BundleError, load_bundle, make_archive, write_bundle
from inference.data import CLASS_NAMES

# pycocotools 2.0 on numpy 2 warns on every mask decode
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TINY = ["INPUT.MIN_SIZE_TEST", "128", "INPUT.MAX_SIZE_TEST", "256",
        "MODEL.RESNETS.STEM_OUT_CHANNELS", "8", "MODEL.RESNETS.RES2_OUT_CHANNELS", "16",
        "MODEL.RESNETS.WIDTH_PER_GROUP", "4", "MODEL.FPN.OUT_CHANNELS", "16", "MODEL.ROI_BOX_HEAD.FC_DIM", "32",
        "MODEL.ROI_MASK_HEAD.CONV_DIM", "16", "MODEL.ROI_MASK_HEAD.NUM_CONV", "1"]


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
    """What `inference train` leaves behind, with a randomly initialised tiny model."""
    from inference.engine.defaults import load_training_config
    from inference.modeling import build_model

    d = tmp_path_factory.mktemp("train_out")
    cfg = load_training_config(os.path.join(ROOT, "inference", "configs", "cascade_small_bn.yaml"), TINY)
    cfg.INPUT.AUGMENT.ROTATE90 = True
    torch.manual_seed(0)
    model = build_model(cfg)
    (d / "config.yaml").write_text(cfg.dump())
    torch.save({"model": model.state_dict(), "optimizer": {}, "iteration": 9}, d / "model_final.pth")
    (d / "training.json").write_text(json.dumps({"class_names": list(CLASS_NAMES), "iterations": 10, "seed": 0,
                                                  "training_data": {"images": 2, "instances": 20}}))
    return d


@pytest.fixture()
def bundle_dir(train_dir, tmp_path):
    from inference.bundle import write_bundle_from_training

    return write_bundle_from_training(str(train_dir), str(tmp_path / "b"), name="test-model", version="1.2.3",
                                      metrics={"segm": {"AP": 0.5}, "images": 3})


def test_bundle_round_trip(bundle_dir):
    b = load_bundle(bundle_dir)
    assert (b.name, b.version, b.class_names) == ("test-model", "1.2.3", list(CLASS_NAMES))
    assert b.metrics == {"segm": {"AP": 0.5}, "images": 3}
    assert b.training_data["images"] == 2 and b.training_data["iterations"] == 10
    meta = json.load(open(os.path.join(bundle_dir, "bundle.json")))
    assert meta["framework"] == "spermatid-portal inference"
    assert (meta["config"], meta["weights"]) == ("config.yaml", "model_final.safetensors")
    assert meta["weights_bytes"] == os.path.getsize(b.weights_path)
    assert meta["created"].endswith("+00:00")
    # shipped for inference: FrozenBN, no training-only keys, no optimizer state
    from inference.config import load_config

    cfg = load_config(b.config_path)
    assert cfg.MODEL.RESNETS.NORM == "FrozenBN"
    from safetensors.torch import load_file

    state = load_file(b.weights_path)
    assert state and not any(k.endswith("num_batches_tracked") for k in state)
    assert not os.path.exists(os.path.join(bundle_dir, "model_final.pth"))


def test_bundle_predictor_predicts(bundle_dir):
    pred = load_bundle(bundle_dir).predictor(device="cpu")
    out = pred.predict(np.full((96, 120, 3), 180, np.uint8), um_per_px=0.25)
    assert out.boxes.shape[1] == 4 and out.masks.shape[1:] == (96, 120)
    assert pred.class_names == list(CLASS_NAMES)


def test_zip_archive_loads_like_the_directory(bundle_dir, tmp_path):
    z = make_archive(bundle_dir, str(tmp_path / "model.zip"))
    b = load_bundle(z)
    assert b.name == "test-model" and os.path.isfile(b.weights_path)
    assert b.weights_sha256 == load_bundle(bundle_dir).weights_sha256


def test_tampered_weights_are_refused(bundle_dir):
    with open(os.path.join(bundle_dir, "model_final.safetensors"), "ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match="sha256"):
        load_bundle(bundle_dir)


@pytest.mark.parametrize("damage, message", [
    (lambda d: os.remove(os.path.join(d, "model_final.safetensors")), "weights file model_final.safetensors is missing"),
    (lambda d: os.remove(os.path.join(d, "config.yaml")), "config file config.yaml is missing"),
    (lambda d: open(os.path.join(d, "bundle.json"), "w").write("{oops"), "not valid JSON"),
    (lambda d: os.remove(os.path.join(d, "bundle.json")), "no bundle.json"),
    (lambda d: _edit(d, lambda m: m.pop("weights_sha256")), "lacks weights_sha256"),
    (lambda d: _edit(d, lambda m: m.update(class_names=["a", "a"])), "class_names"),
    (lambda d: _edit(d, lambda m: m.update(weights="../x.pth")), "inside the bundle"),
    (lambda d: shutil.copy(os.path.join(d, "config.yaml"), os.path.join(d, "w.py")) and _edit(d, lambda m: m.update(
        weights="w.py")), "must be one of .safetensors, .pth, .pt, .pkl"),
])
def test_broken_bundles_raise_a_clear_error(bundle_dir, damage, message):
    damage(bundle_dir)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle_dir)


def _edit(d, fn):
    p = os.path.join(d, "bundle.json")
    meta = json.load(open(p))
    fn(meta)
    json.dump(meta, open(p, "w"))


def test_missing_bundle_and_bad_zip(tmp_path):
    with pytest.raises(BundleError, match="not found"):
        load_bundle(str(tmp_path / "nope"))
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(BundleError, match="zip"):
        load_bundle(str(bad))


def test_export_cli_writes_a_loadable_bundle_and_zip(train_dir, tmp_path):
    from inference.__main__ import main

    out = tmp_path / "exported"
    assert main(["export", "--train-dir", str(train_dir), "--output", str(out), "--name", "x", "--version", "2",
                 "--zip"]) == 0
    assert load_bundle(str(out)).version == "2"
    assert load_bundle(str(out) + ".zip").name == "x"


def test_write_bundle_from_state_dict(train_dir, tmp_path):
    from inference.engine.defaults import inference_config, load_training_config

    cfg = inference_config(load_training_config(str(train_dir / "config.yaml")))
    state = torch.load(train_dir / "model_final.pth", weights_only=True)["model"]
    d = write_bundle(str(tmp_path / "sd"), name="n", version="1", class_names=CLASS_NAMES, config=cfg, weights=state)
    assert load_bundle(d).class_names == list(CLASS_NAMES)
    shutil.rmtree(d)


def test_a_safetensors_bundle_predicts_what_its_source_checkpoint_predicts(tmp_path):
    """Export a .pth checkpoint as a bundle (safetensors weights), load the bundle: same predictions."""
    from inference.checkpoint import read_state_dict
    from inference.predictor import Predictor
    from inference.synth.generator import FieldOptions, render_field

    demo = load_bundle(os.path.join(ROOT, "inference", "assets", "demo_model"))
    source = tmp_path / "model_final.pth"
    torch.save({"model": read_state_dict(demo.weights_path)}, source)
    exported = load_bundle(write_bundle(str(tmp_path / "bundle"), name="rt", version="1", class_names=demo.class_names,
                                        config=demo.config_path, weights=str(source)))
    assert exported.weights_path.endswith(".safetensors")
    rgb, um, _ = render_field(np.random.default_rng(3), FieldOptions(height=256, width=320, cells=(4, 8)))
    expected = Predictor(demo.config_path, source, class_names=demo.class_names).predict(rgb, um_per_px=um)
    got = exported.predictor().predict(rgb, um_per_px=um)
    assert len(expected) > 0
    np.testing.assert_array_equal(got.boxes, expected.boxes)
    np.testing.assert_array_equal(got.scores, expected.scores)
    np.testing.assert_array_equal(got.class_ids, expected.class_ids)
    np.testing.assert_array_equal(got.masks, expected.masks)
