"""State-dict names equal detectron2's; checkpoint loading: .pth/.pkl, strictness, class count, corrupt files."""
import pickle
from pathlib import Path

import pytest
import torch

from inference.checkpoint import CheckpointError, load_checkpoint, read_state_dict
from inference.config import load_config
from inference.modeling import build_model


def _keys_tsv(path):
    rows = [line.rstrip("\n").split("\t") for line in path.read_text().splitlines(True) if not line.startswith("#")]
    assert rows[0] == ["key", "shape"]
    return [(k, s) for k, s in rows[1:]]


@pytest.mark.parametrize("name", ["cascade_mask_rcnn", "mask_rcnn"])
def test_state_dict_keys_and_shapes_equal_detectron2(name, shared_fixtures):
    cfg_path = shared_fixtures / f"detectron2_{name}_R_50_FPN_3x_config.yaml"
    keys_path = shared_fixtures / f"detectron2_{name}_R_50_FPN_3x_keys.tsv"
    model = build_model(load_config(cfg_path))
    got = [(k, "x".join(str(s) for s in v.shape)) for k, v in model.state_dict().items()]
    assert got == _keys_tsv(keys_path)


@pytest.fixture(scope="module")
def small(shared_fixtures):
    d = shared_fixtures / "detectron2_cascade_small"
    cfg = load_config(d / "config.yaml")
    return cfg, d / "model_final.pth"


def test_fixture_loads_strictly_and_bare_sd(small, tmp_path):
    cfg, weights = small
    model = build_model(cfg)
    report = load_checkpoint(model, weights)
    assert report == {"missing": [], "unexpected": [], "mismatched": []}
    sd = torch.load(weights, map_location="cpu")["model"]
    bare = tmp_path / "bare.pth"
    torch.save(sd, bare)
    load_checkpoint(build_model(cfg), bare)
    # detectron2 .pkl: numpy arrays under "model", with __author__
    pkl = tmp_path / "m.pkl"
    with open(pkl, "wb") as f:
        pickle.dump({"model": {k: v.numpy() for k, v in sd.items()}, "__author__": "Detectron2 Model Zoo"}, f)
    m2 = build_model(cfg)
    load_checkpoint(m2, pkl)
    assert torch.equal(m2.state_dict()["roi_heads.box_predictor.2.cls_score.weight"], sd["roi_heads.box_predictor.2.cls_score.weight"])
    # caffe2-style blobs
    blobs = tmp_path / "c2.pkl"
    with open(blobs, "wb") as f:
        pickle.dump({"blobs": {k: v.numpy() for k, v in sd.items()}}, f)
    assert set(read_state_dict(blobs)) == set(sd)


def test_missing_and_unexpected_keys_named(small, tmp_path):
    cfg, weights = small
    sd = torch.load(weights, map_location="cpu")["model"]
    sd.pop("roi_heads.mask_head.deconv.weight")
    sd["roi_heads.extra.weight"] = torch.zeros(3, 2)
    p = tmp_path / "bad.pth"
    torch.save({"model": sd}, p)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(build_model(cfg), p)
    msg = str(e.value)
    assert "roi_heads.mask_head.deconv.weight (64x64x2x2)" in msg or "roi_heads.mask_head.deconv.weight (256x256x2x2)" in msg
    assert "roi_heads.extra.weight (3x2)" in msg
    report = load_checkpoint(build_model(cfg), p, strict=False)
    assert len(report["missing"]) == 1 and len(report["unexpected"]) == 1


def test_class_count_mismatch_refused(small):
    cfg, weights = small
    cfg = cfg.clone()
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 3
    with pytest.raises(CheckpointError, match=r"NUM_CLASSES = 3 .* 6 classes"):
        load_checkpoint(build_model(cfg), weights)


def test_corrupt_and_truncated_files(small, tmp_path):
    cfg, weights = small
    trunc = tmp_path / "trunc.pth"
    trunc.write_bytes(Path(weights).read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="corrupt|truncated"):
        load_checkpoint(build_model(cfg), trunc)
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"not a pickle at all")
    with pytest.raises(CheckpointError, match="corrupt|truncated"):
        read_state_dict(junk)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        read_state_dict(empty)
    with pytest.raises(CheckpointError, match="not found"):
        read_state_dict(tmp_path / "nope.pth")
